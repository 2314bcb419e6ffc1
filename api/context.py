"""What the API needs from the running platform, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.service import AlertService
from devices.catalogue import Catalogue
from ingest.influx import InfluxClient

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
