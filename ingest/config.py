"""What the ingestor needs to know, as one frozen value built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from devices.decode import DecodeLimits
from devices.names import Kind, check


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    topic_prefix: str = ""
    username: str | None = None
    password: str | None = None
    qos: int = 1
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600  # how long the broker queues for us while we are down
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    tls_ca: str | None = None  # CA certificate (PEM) to verify the broker; set = TLS
    # MQTT 5 shared subscription: ingest processes of one group share the stream, the broker
    # hands each message to one of them
    share_group: str | None = None
    # a partitioned worker subscribes to these districts' topics only (None: every district)
    districts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for district in self.districts or ():  # each becomes a topic filter: no `+` or `#`
            check(Kind.DISTRICT, district)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MqttConfig:
        """`mqtt://[user:pass@]host:port` (or `mqtts://`) plus the remaining fields."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
            raise ValueError(f"not an mqtt://host:port URL: {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **kwargs,
        )


@dataclass(frozen=True)
class IngestConfig:
    mqtt: MqttConfig
    limits: DecodeLimits
    batch_size: int = 5000  # readings (or messages) that trigger a flush
    flush_interval_s: float = 0.5  # the longest a reading waits before its batch is written
    max_pending_messages: int = 0  # unacknowledged messages held in memory; 0 = 2 x batch_size
    max_pending_bytes: int = 64 << 20  # ... and their payload bytes, at most
    retry_initial_s: float = 0.2
    retry_max_s: float = 30.0
    # UNSAFE, benchmarks only (not in settings): acknowledge each message as it arrives, so
    # a crash or an outage loses what was not yet stored. Measures what acking after the
    # durable write costs.
    ack_on_receipt: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.flush_interval_s <= 0 or self.max_pending_bytes < 1:
            raise ValueError("batch_size and max_pending_bytes must be >= 1 and "
                             "flush_interval_s > 0")
        if self.max_pending_messages == 0:
            object.__setattr__(self, "max_pending_messages", 2 * self.batch_size)
        if self.max_pending_messages < self.batch_size:
            raise ValueError("max_pending_messages must be at least batch_size")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> IngestConfig:
        """From an `urbanwatch` `Settings` (duck-typed: `ingest` does not import it)."""
        m, i = settings.mqtt, settings.ingest
        url = m.url or f"mqtt://127.0.0.1:{m.port}"
        mqtt = MqttConfig.from_url(
            url, client_id=m.client_id, topic_prefix=m.topic_prefix, qos=m.qos,
            tls_ca=str(m.tls_ca) if getattr(m, "tls_ca", None) else None,
        )
        limits = DecodeLimits(
            max_payload_bytes=i.max_payload_bytes,
            max_age_ms=int(i.max_age_s * 1000),
            max_future_ms=int(i.max_future_s * 1000),
        )
        fields = {"batch_size": i.batch_size, "flush_interval_s": i.flush_interval_s,
                  "max_pending_bytes": i.max_pending_bytes}
        return cls(mqtt=mqtt, limits=limits, **{**fields, **overrides})
