"""The alerts layer inside the platform: detections in, incidents dispatched, timers ticked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.channels.mqtt import MqttChannel
from alerts.channels.webhook import WebhookChannel
from alerts.dispatcher import Dispatcher
from alerts.routing import load_routing
from alerts.service import AlertService
from alerts.store import AlertRow, IncidentRow
from devices.registry import Registry
from ingest.config import MqttConfig
from rules.detection import Detection

log = logging.getLogger(__name__)


class Alerting:
    """Owns the `AlertService`, its dispatcher and channels for one platform run."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], registry: Callable[[], Registry],
        mqtt: MqttConfig, *, tick_s: float = 1.0,
    ) -> None:
        self._sessions, self._registry, self.tick_s = sessions, registry, tick_s
        self.hub = LiveHub()
        self.service = AlertService(
            sessions, load_routing(), device_types=_DeviceTypes(registry),
            locate=self._locate, hub=self.hub,
        )
        self._mqtt = MqttChannel(
            mqtt.host, mqtt.port, prefix=mqtt.topic_prefix, client_id=f"{mqtt.client_id}-dispatch",
            username=mqtt.username, password=mqtt.password,
        )
        self.dispatcher = Dispatcher(
            sessions, {"webhook": WebhookChannel(), "mqtt": self._mqtt}, hub=self.hub
        )

    async def start(self) -> None:
        await self.service.restore()
        await self._mqtt.start()

    async def aclose(self) -> None:
        await self._mqtt.aclose()

    async def handle(self, found: list[Detection], now_ms: int) -> None:
        await self.service.handle(found, now_ms)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch from the outbox and tick escalation timers until `stop`."""
        dispatching = asyncio.create_task(self.dispatcher.run(stop), name="dispatch")
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)
            await self.service.tick(time.time_ns() // 1_000_000)
        await dispatching

    async def counts(self) -> tuple[int, int]:
        """(alerts, incidents) ever recorded."""
        async with self._sessions() as session:
            alerts = await session.scalar(select(func.count()).select_from(AlertRow))
            incidents = await session.scalar(select(func.count()).select_from(IncidentRow))
        return int(alerts or 0), int(incidents or 0)

    def _locate(self, device_id: str) -> tuple[float, float] | None:
        device = self._registry().get(device_id)
        return (device.lat, device.lon) if device else None


class _DeviceTypes(Mapping[str, str]):
    """device id -> type, read from the live registry snapshot (routing matches on it)."""

    def __init__(self, registry: Callable[[], Registry]) -> None:
        self._registry = registry

    def __getitem__(self, device_id: str) -> str:
        device = self._registry().get(device_id)
        if device is None:
            raise KeyError(device_id)
        return device.type

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry().devices)

    def __len__(self) -> int:
        return len(self._registry().devices)
