"""A fault in one part never drops a detection, and never stops the rest of the platform.

The platform runs in-process against the real Mosquitto and influxd of the fixtures and its
SQLite database; faults come through real seams: another connection holding the database's
write lock past the busy timeout, a device row the registry cannot read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import paho.mqtt.client as mqtt
from sqlalchemy import update

from devices.registry import Device
from devices.store import DeviceRow, DeviceStore
from ingest.config import MqttConfig
from tests.support.platform_process import parse_metrics, sample
from tests.support.platform_run import running as run_platform
from tests.support.polling import eventually
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.platform import Platform
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

GAS = Device("gas-fault-1", "gas", "dongcheng", 39.91, 116.41, "dongcheng-g1")


async def register(settings: Settings, *devices: Device) -> None:
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        await DeviceStore(create_session_factory(engine)).add(list(devices))
    finally:
        await engine.dispose()


def publish_lel(settings: Settings, device: Device, lel: float) -> None:
    """One compact-JSON reading at QoS 1, PUBACKed."""
    config = MqttConfig.from_url(settings.mqtt.url or "", client_id=f"t-{uuid.uuid4().hex[:8]}")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id)
    client.connect(config.host, config.port)
    client.loop_start()
    try:
        topic = f"{settings.mqtt.topic_prefix}city/{device.district}/{device.id}/data"
        body = json.dumps({"ts": time.time_ns() // 1_000_000, "m": {"lel_pct": lel}})
        client.publish(topic, body, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@contextlib.asynccontextmanager
async def running(settings: Settings, *, serve_api: bool = False) -> AsyncIterator[Platform]:
    settings.alerts.tick_s = settings.rules.tick_s = 0.2
    async with run_platform(settings, serve_api=serve_api) as platform:
        yield platform


@contextlib.contextmanager
def write_lock(db_path: str):
    """Another process's view: a connection holding SQLite's write lock until the block ends."""
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def test_a_red_detection_survives_the_database_locked_past_its_busy_timeout(
    settings: Settings,
) -> None:
    await register(settings, GAS)
    async with running(settings) as platform:
        alerting, counters = platform.alerting, platform.ingestor.counters  # type: ignore[union-attr]
        assert alerting is not None
        db_path = settings.db_url.split("///", 1)[1]
        with write_lock(db_path):
            await asyncio.to_thread(publish_lel, settings, GAS, 64.0)  # 50 % LEL and up: red
            await eventually(lambda: alerting.backlog.failures >= 1,
                             "the alert store refusing the red detection", timeout_s=60)
            assert not await alerting.backlog.ready()
            assert await alerting.service.incidents(open_only=False) == []
        assert counters.stored_readings == 1 and counters.on_batch_errors == 0

        async def raised() -> bool:
            return bool(await alerting.service.incidents(open_only=False))

        await eventually(raised, "the red incident raised once the lock is released")
        [incident] = await alerting.service.incidents(open_only=False)
        assert await alerting.backlog.ready()
    assert incident.severity.name == "RED" and incident.devices == (GAS.id,)
    assert incident.team_id == "gas-emergency"


async def test_a_failing_task_is_restarted_and_reported_until_it_recovers(
    settings: Settings,
) -> None:
    settings.api.port = free_port()
    await register(settings, GAS)
    async with (running(settings, serve_api=True) as platform,
                httpx.AsyncClient(base_url=platform.endpoints.api_url, timeout=10) as api):
        assert (await api.get("/readyz")).status_code == 200
        async with platform.sessions.begin() as session:  # a row the registry cannot read
            await session.execute(  # stamped like every write: the registry reloads after one
                update(DeviceRow).where(DeviceRow.id == GAS.id)
                .values(status="bogus", updated_ms=DeviceRow.updated_ms + 1))

        async def registry_down() -> bool:
            readyz = await api.get("/readyz")
            return readyz.status_code == 503 and not readyz.json()["checks"]["task:registry"]

        await eventually(registry_down, "/readyz reporting the registry task down")
        down = parse_metrics((await api.get("/metrics")).text)
        await asyncio.to_thread(publish_lel, settings, GAS, 3.0)  # the rest keeps running
        counters = platform.ingestor.counters  # type: ignore[union-attr]
        await eventually(lambda: counters.stored_readings == 1, "a reading still stored")

        async with platform.sessions.begin() as session:
            await session.execute(
                update(DeviceRow).where(DeviceRow.id == GAS.id)
                .values(status="active", updated_ms=DeviceRow.updated_ms + 1))

        async def ready() -> bool:
            return (await api.get("/readyz")).status_code == 200

        await eventually(ready, "/readyz ready again once the row is fixed", timeout_s=90)
        up = parse_metrics((await api.get("/metrics")).text)
    assert sample(down, "urbanwatch_task_up", task="registry") == 0
    assert sample(down, "urbanwatch_task_restarts_total", task="registry") >= 1
    assert sample(down, "urbanwatch_task_up", task="ingest") == 1
    assert sample(down, "urbanwatch_task_restarts_total", task="ingest") == 0
    assert sample(up, "urbanwatch_task_up", task="registry") == 1
    assert platform.tasks.last_error["registry"].startswith("ValueError")
