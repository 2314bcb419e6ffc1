"""One settings model, built once at start-up and passed down.

Sources, highest first: explicit CLI options, `URBANWATCH_*` environment
variables (nested with `__`, e.g. `URBANWATCH_INFLUX__DATABASE`), a TOML file
given with `--config`, then the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.security.secret_key import check_secret_key


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a config file is an error


class MqttSettings(_Section):
    url: str | None = Field(None, description="mqtt://[user:pass@]host:port; None = managed broker")
    port: int = Field(18830, description="port of the managed broker")
    client_id: str = "urbanwatch-ingest"
    topic_prefix: str = Field("", description="prepended to every topic (test isolation)")
    qos: int = 1
    tls_ca: Path | None = Field(
        None, description="CA certificate (PEM) the platform's clients verify the broker with; "
        "set = clients use TLS"
    )
    tls_cert: Path | None = Field(None, description="the managed broker's TLS certificate (PEM)")
    tls_key: Path | None = Field(None, description="the managed broker's TLS private key (PEM)")

    @model_validator(mode="after")
    def _broker_tls_files_together(self) -> MqttSettings:
        if (self.tls_cert is None) != (self.tls_key is None) or (
            self.tls_cert is not None and self.tls_ca is None
        ):
            raise ValueError("mqtt.tls_cert, mqtt.tls_key and mqtt.tls_ca are needed together")
        return self


class InfluxSettings(_Section):
    url: str | None = Field(None, description="http://host:port; None = managed influxd")
    port: int = Field(18086, description="HTTP port of the managed influxd")
    database: str = "urbanwatch"
    username: str | None = None
    password: str | None = None
    retention: str = "30d"
    downsample_retention: str = "365d"
    timeout_s: float = 10.0


class DbSettings(_Section):
    url: str | None = Field(None, description="SQLAlchemy async URL; None = SQLite in state_dir")


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str | None = Field(
        None, description="signs access tokens; required outside development"
    )
    environment: Literal["development", "production"] = "development"
    access_token_ttl_s: int = Field(900, ge=60, description="lifetime of an access token")
    refresh_token_ttl_s: int = Field(
        14 * 24 * 3600, ge=300, description="lifetime of a refresh token (each is single use)"
    )
    max_body_bytes: int = Field(
        4 << 20, ge=1024, le=1 << 30, description="largest request body; larger ones get 413"
    )
    max_import_bytes: int = Field(
        32 << 20, ge=1024, le=1 << 31, description="largest device import (CSV or GeoJSON)"
    )
    tls_cert: Path | None = Field(None, description="certificate (PEM): serve HTTPS")
    tls_key: Path | None = Field(None, description="private key (PEM) of tls_cert")
    timezone: str = Field(
        "Asia/Shanghai", description="the city's IANA time zone: the web pages show times in it"
    )
    public_warnings_feed: bool = Field(
        False, description="serve the Atom feed of public warnings without a login"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

    @model_validator(mode="after")
    def _strong_secret_outside_development(self) -> ApiSettings:
        check_secret_key(self.secret_key, self.environment)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("api.tls_cert and api.tls_key are needed together")
        return self


class IngestSettings(_Section):
    batch_size: int = 5000
    flush_interval_s: float = 0.5
    max_payload_bytes: int = 65536
    max_age_s: float = 7 * 24 * 3600
    max_future_s: float = 300
    spool_max_bytes: int = Field(1 << 30, description="local spool used while InfluxDB is down")


class RulesSettings(_Section):
    path: Path | None = Field(None, description="rule file (YAML); None = the shipped default pack")
    tick_s: float = Field(1.0, gt=0, description="how often time-only conditions are judged")
    utc_offset_h: float = Field(8.0, description="the city's offset from UTC, for hour()")
    checkpoint_s: float = Field(
        60.0, gt=0, description="how often the engine's state is saved to the state folder "
        "(and at shutdown); a crash loses at most this much learning"
    )


class AlertsSettings(_Section):
    routing_path: Path | None = Field(
        None, description="routing file (YAML), reloaded when it changes; None = the shipped one"
    )
    tick_s: float = Field(
        1.0, gt=0, description="how often escalation timers and the files are checked"
    )
    retry_base_s: float = Field(1.0, gt=0, description="first webhook/MQTT retry delay (doubles)")
    retry_max_s: float = Field(300.0, gt=0, description="longest delay between retries")
    give_up_after_s: float = Field(
        3600.0, gt=0, description="stop retrying a notification after this"
    )
    live_backlog_events: int = Field(
        10_000, ge=1, description="live events kept for streams that resume after a reconnect"
    )
    live_backlog_h: float = Field(
        24.0, gt=0, description="how long a live event is kept for streams that resume"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="URBANWATCH_", env_nested_delimiter="__", extra="forbid"
    )

    state_dir: Path = Path(".urbanwatch")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    db: DbSettings = DbSettings()
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    rules: RulesSettings = RulesSettings()
    alerts: AlertsSettings = AlertsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = init_settings.init_kwargs.pop("_config_file", None)  # type: ignore[attr-defined]
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def db_url(self) -> str:
        return self.db.url or f"sqlite+aiosqlite:///{self.state_dir.resolve() / 'urbanwatch.db'}"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from a TOML file (optional), the environment and overrides.

    `overrides` are nested dicts or values keyed like the model, e.g.
    ``load_settings(mqtt={"url": "mqtt://127.0.0.1:1883"})``; None values are ignored.
    """
    clean = _drop_none(overrides)
    if config is not None:
        if not config.is_file():
            raise FileNotFoundError(f"config file {config} not found")
        clean["_config_file"] = config
    return Settings(**clean)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out


def without_password(url: str) -> str:
    """`url` with the password of its user info shown as `***`, for banners and logs (an
    MQTT, InfluxDB or SQL URL may carry a login)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
