"""One settings model, built once at start-up and passed down.

Sources, highest first: explicit CLI options, `URBANWATCH_*` environment
variables (nested with `__`, e.g. `URBANWATCH_INFLUX__DATABASE`), secrets read from
files (`URBANWATCH_*_FILE`, the secrets folder), the TOML file (`--config`,
`URBANWATCH_CONFIG` or `/etc/urbanwatch/urbanwatch.toml`), then the defaults below
(`urbanwatch.config_sources` says how each is found). Every number has its range; a
wrong setting is reported with where it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.security.secret_key import check_secret_key
from rules.engine.scoring import CITY_TIMEZONE
from urbanwatch.config_sources import (
    SecretFiles,
    SettingsError,
    WithoutFileVariables,
    config_path,
    default_state_dir,
    read_toml,
    secrets_dir,
    source_of,
)

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=30 * 24 * 3600)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a config file is an error


class MqttSettings(_Section):
    url: str | None = Field(
        None, repr=False, description="mqtt://[user:pass@]host:port; None = managed broker"
    )
    port: Port = Field(18830, description="port of the managed broker")
    username: str | None = Field(
        None, min_length=1, description="the platform's login at a broker given by url"
    )
    password: str | None = Field(None, repr=False, description="its password (a secret)")
    client_id: str = "urbanwatch-ingest"
    topic_prefix: str = Field("", description="prepended to every topic (test isolation)")
    qos: int = Field(1, ge=0, le=1)
    tls_ca: Path | None = Field(
        None, description="CA certificate (PEM) the platform's clients verify the broker with; "
        "set = clients use TLS"
    )
    tls_cert: Path | None = Field(None, description="the managed broker's TLS certificate (PEM)")
    tls_key: Path | None = Field(None, description="the managed broker's TLS private key (PEM)")

    @model_validator(mode="after")
    def _broker_tls_files_together(self) -> MqttSettings:
        if (self.username is not None or self.password is not None) and self.url is None:
            raise ValueError("mqtt.username and mqtt.password are for a broker given by mqtt.url")
        if (self.username is None) != (self.password is None):
            raise ValueError("mqtt.username and mqtt.password are needed together")
        if (self.tls_cert is None) != (self.tls_key is None) or (
            self.tls_cert is not None and self.tls_ca is None
        ):
            raise ValueError("mqtt.tls_cert, mqtt.tls_key and mqtt.tls_ca are needed together")
        return self


class InfluxSettings(_Section):
    url: str | None = Field(None, description="http://host:port; None = managed influxd")
    port: Port = Field(18086, description="HTTP port of the managed influxd")
    host: Literal["127.0.0.1", "0.0.0.0"] = Field(
        "127.0.0.1", description="where the managed influxd listens: this machine only, or every "
        "interface (then it requires a login, made for the platform in the state folder)"
    )
    database: str = "urbanwatch"
    username: str | None = None
    password: str | None = Field(None, repr=False)
    retention: str = "30d"
    downsample_retention: str = "365d"
    timeout_s: float = Field(10.0, gt=0, le=600)


class DbSettings(_Section):
    url: str | None = Field(
        None, repr=False, description="SQLAlchemy async URL; None = SQLite in state_dir"
    )


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 8000
    secret_key: str | None = Field(
        None, repr=False, description="signs access tokens; required outside development"
    )
    environment: Literal["development", "production"] = "development"
    access_token_ttl_s: int = Field(
        900, ge=60, le=24 * 3600, description="lifetime of an access token"
    )
    refresh_token_ttl_s: int = Field(
        14 * 24 * 3600, ge=300, le=366 * 24 * 3600,
        description="lifetime of a refresh token (each is single use)",
    )
    max_body_bytes: int = Field(
        4 << 20, ge=1024, le=1 << 30, description="largest request body; larger ones get 413"
    )
    max_photo_bytes: int = Field(
        3 << 20, ge=1024, le=1 << 30,
        description="largest photo from the scene (at most max_body_bytes counts)",
    )
    max_import_bytes: int = Field(
        32 << 20, ge=1024, le=1 << 31, description="largest device import (CSV or GeoJSON)"
    )
    body_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="a request body must arrive whole within this; else 408"
    )
    max_live_streams: int = Field(
        8, ge=1, le=10_000,
        description="live streams (WebSocket and SSE) one user or API key may hold open",
    )
    max_notes_per_incident: int = Field(
        500, ge=1, le=100_000, description="notes on one incident's timeline"
    )
    max_report_days: int = Field(
        366, ge=1, le=3660, description="the widest time range of a report"
    )
    max_backtest_days: int = Field(
        31, ge=1, le=366, description="the longest time range of a backtest"
    )
    tls_cert: Path | None = Field(None, description="certificate (PEM): serve HTTPS")
    tls_key: Path | None = Field(None, description="private key (PEM) of tls_cert")
    public_warnings_feed: bool = Field(
        False, description="serve the Atom feed of public warnings without a login"
    )
    public_url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="the address people open the dashboard at, "
        "for the links in e-mails and SMS; None = [cap] web, else http://host:port"
    )

    @model_validator(mode="after")
    def _strong_secret_outside_development(self) -> ApiSettings:
        check_secret_key(self.secret_key, self.environment)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("api.tls_cert and api.tls_key are needed together")
        return self


class IngestSettings(_Section):
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    flush_interval_s: float = Field(0.5, gt=0, le=60)
    max_payload_bytes: int = Field(65536, ge=64, le=256 << 20)
    max_pending_bytes: int = Field(
        64 << 20, ge=1, le=1 << 40, description="payload bytes held in memory before they are "
        "stored; past this the ingestor stops reading from the broker (as it does past "
        "2 x batch_size messages)"
    )
    max_age_s: Seconds = 7 * 24 * 3600
    max_future_s: float = Field(
        300, ge=0, le=24 * 3600, description="how far ahead of now a reading may be stamped; "
        "with clock = \"readings\", ahead of where the other devices' readings are arriving")
    spool_max_bytes: int = Field(
        1 << 30, ge=1 << 20, le=1 << 40, description="local spool used while InfluxDB is down"
    )


class RulesSettings(_Section):
    path: Path | None = Field(None, description="rule file (YAML); None = the shipped default pack")
    tick_s: float = Field(
        1.0, gt=0, le=3600, description="how often time-only conditions are judged"
    )
    checkpoint_s: Seconds = Field(
        60.0, description="how often the engine's state is saved to the state folder "
        "(and at shutdown); a crash loses at most this much learning"
    )


class AlertsSettings(_Section):
    routing_path: Path | None = Field(
        None, description="routing file (YAML), reloaded when it changes; None = the shipped one"
    )
    tick_s: float = Field(
        1.0, gt=0, le=3600, description="how often escalation timers and the files are checked"
    )
    retry_base_s: Seconds = Field(1.0, description="first webhook/MQTT retry delay (doubles)")
    retry_max_s: Seconds = Field(300.0, description="longest delay between retries")
    give_up_after_s: Seconds = Field(3600.0, description="stop retrying a notification after this")
    live_backlog_events: int = Field(
        10_000, ge=1, le=10_000_000,
        description="live events kept for streams that resume after a reconnect"
    )
    live_backlog_h: float = Field(
        24.0, gt=0, le=24 * 366, description="how long a live event is kept for streams that resume"
    )


class SmtpSettings(_Section):
    """The mail server the e-mail channel sends through (policy steps with `channel: email`)."""

    host: str | None = Field(None, min_length=1, description="None = no e-mail channel")
    port: Port = Field(587, description="587 for STARTTLS, 465 for ssl, 25 for none")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="STARTTLS after connecting, TLS from the start (ssl), or none"
    )
    username: str | None = Field(None, min_length=1, description="login at the mail server")
    password: str | None = Field(None, repr=False, description="its password (a secret)")
    from_address: str = Field(
        "urbanwatch@localhost", max_length=254, pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$",
        description="the sender (From) of every e-mail",
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="one SMTP conversation at most")

    @model_validator(mode="after")
    def _login_together(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("smtp.username and smtp.password are needed together")
        return self


class CitySettings(_Section):
    timezone: str = Field(
        CITY_TIMEZONE, description="the city's IANA time zone: rules' hour(), seasonal "
        "baselines (what is usual for each local hour), silences, reports, CAP times, the pages"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value


class CapSettings(_Section):
    """Who the public warnings (CAP 1.2) come from."""

    sender: str = Field(
        "urbanwatch", min_length=1, max_length=200, pattern=r"^[^\s,<&]+$",
        description="CAP sender: an e-mail-like address, no spaces, commas, < or &",
    )
    sender_name: str = Field("urbanwatch city operations center", min_length=1, max_length=200)
    language: str = Field(
        "en-US", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="RFC 3066 code"
    )
    web: str | None = Field(
        None, pattern=r"^https?://\S+$", description="public web address for more information"
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "warning"
    format: Literal["text", "json"] = Field(
        "text", description="json: one object per line (journald, Loki)"
    )
    access: bool = Field(False, description="one log line per API request")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="URBANWATCH_", env_nested_delimiter="__", extra="forbid"
    )

    state_dir: Path = Field(default_factory=lambda: default_state_dir(None))
    secrets_dir: Path | None = Field(None, description="one file per secret setting")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    db: DbSettings = DbSettings()
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    rules: RulesSettings = RulesSettings()
    alerts: AlertsSettings = AlertsSettings()
    city: CitySettings = CitySettings()
    cap: CapSettings = CapSettings()
    smtp: SmtpSettings = SmtpSettings()
    log: LogSettings = LogSettings()
    clock: Literal["wall", "readings"] = Field(
        "wall", description="what `now` is: the wall clock, or the time of the newest readings "
        "(a simulated city run faster than real time, `urbanwatch simulate --speed`)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        kwargs = init_settings.init_kwargs  # type: ignore[attr-defined]
        toml_file, folder = kwargs.pop("_config_file", None), kwargs.pop("_secrets_folder", None)
        sources: list[PydanticBaseSettingsSource] = [
            init_settings, WithoutFileVariables(settings_cls, env_settings),
            SecretFiles(settings_cls, folder),
        ]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def dashboard_url(self) -> str:
        """Where people open the dashboard: the links that pages carry."""
        return self.api.public_url or self.cap.web or f"http://{self.api.host}:{self.api.port}"

    @property
    def db_url(self) -> str:
        return self.db.url or f"sqlite+aiosqlite:///{self.state_dir.resolve() / 'urbanwatch.db'}"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the TOML file in force, secret files, the environment and
    overrides.

    `config` is `--config`; without it `URBANWATCH_CONFIG` or the default file is read (see
    `urbanwatch.config_sources`). `overrides` are nested dicts or values keyed like the
    model, e.g. ``load_settings(mqtt={"url": "mqtt://127.0.0.1:1883"})``; None values are
    ignored.

    Raises:
        FileNotFoundError: the named configuration file does not exist.
        SettingsError: every problem found, each naming its source.
    """
    clean = _drop_none(overrides)
    path = config_path(config)
    toml = read_toml(path) if path is not None else {}
    folder = secrets_dir(toml)
    try:
        settings = Settings(**clean, _config_file=path, _secrets_folder=folder)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError([
            f"{source_of(e['loc'], clean, path, toml, folder)}: {_message(e)}"
            for e in exc.errors(include_input=False)
        ]) from None
    if "state_dir" not in settings.model_fields_set:
        settings.state_dir = default_state_dir(path)
    return settings


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting"
    return str(error["msg"]).removeprefix("Value error, ")


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
