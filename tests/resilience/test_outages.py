"""InfluxDB down for 15 s, and Mosquitto restarted, in the middle of a stream: nothing lost."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import httpx
import pytest

from ingest.timeseries.client import InfluxClient
from simulators.city import City
from tests.support.platform_process import PlatformProcess, sample
from tests.support.polling import eventually
from tests.support.streams import Stream, as_json, expected_points, readings, stored_points
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto

OUTAGE_S = 15.0


async def stored_exactly(influx: InfluxClient, city: City, expected: dict) -> None:
    async def all_there() -> bool:
        return await influx.count() >= len(expected)

    await eventually(all_there, f"{len(expected)} points in InfluxDB", timeout_s=90,
                     interval_s=1.0)
    stored = await stored_points(influx, sorted({d.type for d in city.devices}))
    assert stored == expected


async def readiness(process: PlatformProcess) -> httpx.Response:
    async with httpx.AsyncClient(base_url=process.api_url, timeout=5.0) as api:
        return await api.get("/readyz")


@pytest.mark.timeout(180)
async def test_influxdb_down_for_15_s_everything_is_spooled_then_replayed(
    platform: PlatformProcess, city: City, influx_db: InfluxClient, influxd: Influxd,
    mosquitto: Mosquitto, topic_prefix: str,
) -> None:
    sent = readings(city, 125, t0_ms=time.time_ns() // 1_000_000 - 3_600_000)
    stream = Stream(mosquitto.host, mosquitto.port, topic_prefix,
                    [as_json(city, r) for r in sent], rate=500).start()  # 25 s
    try:
        # The outage starts once 5 % of the readings went straight to InfluxDB.
        await eventually(partial(stored_at_least, influx_db, len(sent) // 20),
                         "5 % of the readings stored")
        influxd.stop()
        outage_started = time.monotonic()
        down = await readiness(platform)
        await eventually(lambda: spooled(platform), "readings going to the spool")
        during = await platform.metrics()
        await asyncio.sleep(OUTAGE_S - (time.monotonic() - outage_started))
        assert not stream.done, "the stream ended during the outage"
        influxd.start()
        await eventually(lambda: stream.done, "the broker took every reading", timeout_s=60)
    finally:
        stream.close()

    await stored_exactly(influx_db, city, expected_points(sent))
    assert down.status_code == 200  # still ready: ingest spools, nothing is lost
    tasks = ("alerts", "dispatch", "ingest", "registry", "rules", "spool")
    assert down.json() == {"status": "degraded", "degraded": ["influxdb"], "checks": {
        "mqtt": True, "influxdb": False, "sql": True, "alert-store": True,
        **{f"task:{t}": True for t in tasks}}}
    assert sample(during, "urbanwatch_degraded") == 1
    assert sample(during, "urbanwatch_dependency_up", dependency="influxdb") == 0
    assert sample(during, "urbanwatch_dependency_up", dependency="sql") == 1
    metrics = await platform.metrics()
    n_spooled = sample(metrics, "urbanwatch_ingest_spooled_readings_total")
    assert 0 < n_spooled < len(sent)
    assert sample(metrics, "urbanwatch_ingest_replayed_readings_total") == n_spooled
    assert sample(metrics, "urbanwatch_ingest_spool_bytes") == 0
    assert list((platform.settings.state_dir / "spool").glob("seg-*")) == []
    assert (await readiness(platform)).json()["status"] == "ready"
    assert sample(await platform.metrics(), "urbanwatch_degraded") == 0
    print(f"\ninfluxd down {OUTAGE_S:g} s: {n_spooled:g} of {len(sent)} readings spooled and "
          "replayed; spool empty")


async def stored_at_least(influx: InfluxClient, n: int) -> bool:
    return await influx.count() >= n


async def spooled(process: PlatformProcess) -> bool:
    return sample(await process.metrics(), "urbanwatch_ingest_spooled_readings_total") > 0


@pytest.mark.timeout(120)
async def test_mosquitto_restarted_mid_stream_nothing_is_lost(
    platform: PlatformProcess, city: City, influx_db: InfluxClient, mosquitto: Mosquitto,
    topic_prefix: str,
) -> None:
    sent = readings(city, 100, t0_ms=time.time_ns() // 1_000_000 - 3_600_000)
    stream = Stream(mosquitto.host, mosquitto.port, topic_prefix,
                    [as_json(city, r) for r in sent], rate=1500, client_id=f"{topic_prefix}pub")
    stream.start()
    try:
        await eventually(lambda: stream.acked >= len(sent) // 4, "a quarter of the stream acked")
        acked_before = stream.acked
        await asyncio.to_thread(mosquitto.restart)  # SIGTERM: the broker saves its sessions
        assert 0 < acked_before < len(sent), "the restart was not in the middle of the stream"
        await eventually(lambda: stream.done, "the broker took every reading", timeout_s=60)
    finally:
        stream.close()

    await stored_exactly(influx_db, city, expected_points(sent))
    await eventually(lambda: _ready(platform), "the platform ready again")
    print(f"\nmosquitto restarted after {acked_before} of {len(sent)} readings: all stored")


async def _ready(process: PlatformProcess) -> bool:
    return (await readiness(process)).status_code == 200
