"""What the API needs from the running platform, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.catalogue import Catalogue
from ingest.influx import InfluxClient

Probe = Callable[[], Awaitable[bool]]


@dataclass
class ApiContext:
    sessions: async_sessionmaker[AsyncSession]
    influx: InfluxClient
    catalogue: Catalogue
    probes: dict[str, Probe] = field(default_factory=dict)
