"""What the API needs from the running platform, handed in by the composition root.

The core (SQL, InfluxDB, the device catalogue, how tokens are signed) is always there. The
alert service and the rule file are parts a process may run without (a test app, a tool):
a route that needs a missing part answers 503 (`api.deps`). Routes take what they need
through the dependencies of `api.deps`, never the whole context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.service import AlertService
from api.etag import TaggedBody
from api.metrics import MetricSources
from api.photos import PhotoStore
from api.probing import Probe
from api.security.passwords import PasswordPool
from api.security.ratelimit import LoginThrottle
from api.stream_slots import StreamSlots
from devices.catalogue import Catalogue
from devices.provisioning import Changed
from devices.registry import Registry
from ingest.timeseries.client import InfluxClient
from rules.engine.scoring import CITY_TIMEZONE


@dataclass(frozen=True)
class TokenPolicy:
    """How access tokens are signed, and how long access and refresh tokens live."""

    secret_key: str
    access_ttl_s: int = 900  # an access token (JWT)
    refresh_ttl_s: int = 14 * 24 * 3600  # a refresh token (single use)


@dataclass(frozen=True)
class BodyLimits:
    """The largest request bodies, in bytes (larger ones are a 413 before anything else)."""

    body_bytes: int = 4 << 20
    import_bytes: int = 32 << 20  # a device import (CSV or GeoJSON)
    read_timeout_s: float = 60.0  # a body must have arrived whole by then (408 otherwise)


@dataclass(frozen=True)
class Bounds:
    """How much one request may ask for; beyond these it is a 4xx that says which bound."""

    notes_per_incident: int = 500  # timeline notes; the next one is a 409
    report_days: int = 366  # the widest report time range
    backtest_days: int = 31  # the longest backtest span


@dataclass(frozen=True)
class AlertsPart:
    """Alerts, incidents, silences and reports; their change events; the routing reload."""

    service: AlertService
    hub: LiveHub
    reload_routing: Callable[[], Awaitable[object]]  # re-read the file; RoutingError if invalid
    routing_path: Path | None = None  # the routing file teams are edited in; None: the shipped


@dataclass(frozen=True)
class RulesPart:
    """The rule file the engine runs (the API edits it) and what backtests replay against."""

    path: Path
    registry: Callable[[], Registry]  # the live device registry


@dataclass
class ApiContext:
    sessions: async_sessionmaker[AsyncSession]
    influx: InfluxClient
    catalogue: Catalogue
    tokens: TokenPolicy
    alerts: AlertsPart | None = None
    rules: RulesPart | None = None  # None: the shipped pack, read-only, and no backtests
    metrics: MetricSources = field(default_factory=MetricSources)
    probes: Mapping[str, Probe] = field(default_factory=dict)  # /readyz and /metrics
    # dependencies whose loss the platform rides out (InfluxDB: ingest spools): "degraded"
    degrading: frozenset[str] = frozenset()
    # devices or their MQTT credentials changed: reload broker users/ACLs and the registry
    on_devices_changed: Changed | None = None
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)  # failed logins
    body_limits: BodyLimits = field(default_factory=BodyLimits)  # largest request bodies
    passwords: PasswordPool = field(default_factory=PasswordPool)  # argon2, off the default pool
    # the city's IANA zone ([city] timezone): the pages show times in it, backtests' hour(),
    # weekly silences given without a zone
    timezone: str = CITY_TIMEZONE
    bounds: Bounds = field(default_factory=Bounds)
    live_streams: StreamSlots = field(default_factory=StreamSlots)  # open per user or API key
    photos: PhotoStore | None = None  # photos from the scene; None: this process keeps none
    public_feed: bool = False  # the Atom feed of public warnings needs no login
    # GET /map/devices: every page load asks, the devices seldom change
    device_map: TaggedBody = field(default_factory=TaggedBody)
