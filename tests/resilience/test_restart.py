"""`urbanwatch serve` restarted (SIGKILL, or SIGTERM for a planned restart) forgets nothing the
engine needs: firing alerts still clear, silent devices are flagged from their real last reading
(the platform's own downtime is no device's silence), and detector warm-up survives a planned
restart (through the checkpoint)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.model import OPEN_ALERT_STATES, Alert, AlertState
from alerts.sql import repository
from ingest.timeseries.client import InfluxClient
from simulators.city import City
from tests.support.platform_process import PlatformProcess
from tests.support.polling import eventually
from tests.support.streams import Outgoing, Stream
from urbanwatch.checkpoint import FILENAME
from urbanwatch.database import create_engine, create_session_factory
from urbanwatch.judging import ALIVE_S
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.settings import Settings

STALE_SAFETY_MS = 5 * 60_000  # device-offline-safety: stale(5m) for gas detectors
DOWNTIME_S = 12


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.db_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def reading(city: City, device_id: str, metric: str, ts_ms: int, value: float) -> Outgoing:
    district = next(d.district for d in city.devices if d.id == device_id)
    body = json.dumps({"ts": ts_ms, "m": {metric: value}}).encode()
    return Outgoing(f"city/{district}/{device_id}/data", body)


def publish(mosquitto: Mosquitto, prefix: str, messages: list[Outgoing]) -> None:
    stream = Stream(mosquitto.host, mosquitto.port, prefix, messages).start()
    try:
        assert eventually_sync(lambda: stream.done), "the broker did not take the readings"
    finally:
        stream.close()


def eventually_sync(done, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def alert_of(sessions: async_sessionmaker[AsyncSession], rule_id: str,
                   subject: str) -> Alert | None:
    async with sessions() as session:
        found = [a for a in await repository.load_alerts(session, open_only=False)
                 if a.rule_id == rule_id and a.subject == subject]
    return max(found, key=lambda a: a.started_ms) if found else None


def first_of(city: City, device_type: str, n: int = 1) -> list[str]:
    return [d.id for d in city.devices if d.type == device_type][:n]


@pytest.mark.timeout(180)
async def test_a_firing_alert_clears_after_a_crash(
    platform: PlatformProcess, city: City, mosquitto: Mosquitto, topic_prefix: str,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    (gas,) = first_of(city, "gas")
    publish(mosquitto, topic_prefix, [reading(city, gas, "lel_pct", now_ms(), 30.0)])

    async def firing() -> bool:
        alert = await alert_of(sessions, "gas-lel", gas)
        return alert is not None and alert.state == AlertState.FIRING

    await eventually(firing, "gas-lel firing", timeout_s=30)
    platform.kill()
    platform.start()
    await platform.wait_ready()
    publish(mosquitto, topic_prefix, [reading(city, gas, "lel_pct", now_ms(), 2.0)])

    async def cleared() -> bool:
        alert = await alert_of(sessions, "gas-lel", gas)
        return alert is not None and alert.state not in OPEN_ALERT_STATES

    await eventually(cleared, f"gas-lel on {gas} cleared after the restart\n"
                              f"{platform.log_tail()}", timeout_s=30)


@pytest.mark.timeout(240)
async def test_a_silent_device_is_flagged_from_its_last_reading_not_counting_the_downtime(
    platform: PlatformProcess, city: City, mosquitto: Mosquitto, topic_prefix: str,
    sessions: async_sessionmaker[AsyncSession], influx_db: InfluxClient,
) -> None:
    (gas,) = first_of(city, "gas")
    last_ms = now_ms() - STALE_SAFETY_MS + 40_000  # silent from now on: due in 40 s
    publish(mosquitto, topic_prefix, [reading(city, gas, "lel_pct", last_ms, 1.0)])

    async def stored() -> bool:
        return await influx_db.count("gas") >= 1

    await eventually(stored, "the reading stored", timeout_s=30)
    platform.kill()  # before any checkpoint: only InfluxDB knows the last reading
    assert not (settings_dir(platform) / FILENAME).exists()
    killed_ms = now_ms()
    await asyncio.sleep(DOWNTIME_S)  # down past the moment the device would have turned stale
    started_ms = now_ms()
    platform.start()
    await platform.wait_ready()
    ready_ms = now_ms()

    async def offline() -> bool:
        alert = await alert_of(sessions, "device-offline-safety", gas)
        return alert is not None and alert.state == AlertState.FIRING

    await eventually(offline, f"{gas} flagged offline\n{platform.log_tail()}", timeout_s=120,
                     interval_s=1.0)
    alert = await alert_of(sessions, "device-offline-safety", gas)
    assert alert is not None
    # counted from the real last reading, but only while the platform listened: the downtime
    # (from the last alive mark, at most ALIVE_S before the kill, to the restore) adds to it
    late_ms = alert.started_ms - (last_ms + STALE_SAFETY_MS)
    assert started_ms - killed_ms - 1000 <= late_ms <= ready_ms - killed_ms + ALIVE_S * 1000 + 2000


@pytest.mark.timeout(240)
async def test_detector_warm_up_survives_a_planned_restart(
    platform: PlatformProcess, city: City, mosquitto: Mosquitto, topic_prefix: str,
    sessions: async_sessionmaker[AsyncSession], influx_db: InfluxClient,
) -> None:
    aq, control = first_of(city, "air_quality", 2)
    t0 = now_ms() - 600_000
    usual = [reading(city, device, "pm25", t0 + k * 2000, 30.0 + (k % 5) * 0.5)
             for k in range(260) for device in (aq, control)]
    publish(mosquitto, topic_prefix, usual)

    async def stored() -> bool:  # stored, so judged: the readings are learned before the stop
        return await influx_db.count_values() >= len(usual)

    await eventually(stored, "the usual readings stored", timeout_s=60, interval_s=0.5)
    code = platform.stop()  # SIGTERM: the engine's state is checkpointed on the way out
    assert code == 0, platform.log_tail()
    assert (settings_dir(platform) / FILENAME).exists()
    platform.start()
    await platform.wait_ready()
    (fresh,) = [d for d in first_of(city, "air_quality", 3) if d not in (aq, control)]
    spike_ms = now_ms()
    publish(mosquitto, topic_prefix, [reading(city, aq, "pm25", spike_ms, 90.0),
                                      reading(city, fresh, "pm25", spike_ms, 90.0)])

    async def anomaly() -> bool:
        alert = await alert_of(sessions, "anomaly", aq)
        return alert is not None and alert.started_ms >= spike_ms

    await eventually(anomaly, f"anomaly on {aq} after the restart\n{platform.log_tail()}",
                     timeout_s=30)
    # a device that never warmed up says nothing about the same reading
    assert await alert_of(sessions, "anomaly", fresh) is None


def settings_dir(platform: PlatformProcess):
    return platform.settings.state_dir
