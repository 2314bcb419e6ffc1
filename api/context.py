"""What the API needs from the running platform, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.service import AlertService
from api.platform_stats import EngineStats, TaskStats
from api.security.ratelimit import LoginThrottle
from devices.catalogue import Catalogue
from devices.registry import Registry
from ingest.counters import IngestCounters
from ingest.timeseries.client import InfluxClient

Probe = Callable[[], Awaitable[bool]]


@dataclass
class ApiContext:
    sessions: async_sessionmaker[AsyncSession]
    influx: InfluxClient
    catalogue: Catalogue
    secret_key: str  # signs access tokens
    probes: dict[str, Probe] = field(default_factory=dict)
    alerts: AlertService | None = None  # alerts, incidents, silences, reports
    live: LiveHub | None = None  # alert / incident change events
    # devices or their MQTT credentials changed: reload broker users/ACLs and the registry
    on_devices_changed: Callable[[], Awaitable[None]] | None = None
    ingest: IngestCounters | None = None  # exposed on /metrics
    engine: EngineStats | None = None  # rule engine timings, on /metrics
    tasks: TaskStats | None = None  # supervised platform tasks, on /metrics and /readyz
    outbox_depth: Callable[[], Awaitable[int]] | None = None  # pending notifications
    rules_path: Path | None = None  # the rule file the engine runs; None = shipped pack, read-only
    registry: Callable[[], Registry] | None = None  # the live device registry (backtests)
    utc_offset_h: float = 8.0  # the city's offset from UTC, for hour() in backtests
    reload_routing: Callable[[], Awaitable[object]] | None = None  # re-read the routing file
    access_token_ttl_s: int = 900  # lifetime of an access token (JWT)
    refresh_token_ttl_s: int = 14 * 24 * 3600  # lifetime of a refresh token (single use)
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)  # failed logins
