"""The whole spine against real services: simulator → Mosquitto → ingest → InfluxDB → API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from simulators.city import build_city
from simulators.publisher import PublishOptions, publish
from tests.support.polling import eventually
from urbanwatch.demo import import_city, stored_readings
from urbanwatch.platform import Platform
from urbanwatch.services.ports import free_port, port_open
from urbanwatch.settings import Settings


async def test_every_published_reading_is_stored(settings: Settings) -> None:
    settings.api.port = free_port()
    await import_city(settings, n_devices=120, seed=7)
    city = build_city(120, 7)
    stop = asyncio.Event()
    async with Platform(settings) as platform:
        assert platform.ingestor is not None and platform.influx is not None
        runner = asyncio.create_task(platform.run(stop))
        await platform.ingestor.wait_ready(timeout_s=20)
        options = PublishOptions(settings.mqtt.url or "", topic_prefix=settings.mqtt.topic_prefix)
        summary = await publish(city, options, rate=3000, duration_s=3)
        counters = platform.ingestor.counters
        await eventually(lambda: counters.stored_readings >= summary.readings_acked,
                         "every acknowledged reading stored", timeout_s=60)
        async with httpx.AsyncClient(base_url=platform.endpoints.api_url) as api:
            ready = await api.get("/readyz")
        stop.set()
        await runner
        stored = await stored_readings(platform.influx)
    assert summary.readings_acked > 1000
    assert stored == summary.readings_acked == counters.stored_readings
    assert sum(counters.rejected.values()) == 0
    assert ready.status_code == 200, ready.text
    tasks = ("alerts", "dispatch", "ingest", "registry", "rules", "spool")
    assert ready.json()["checks"] == {
        "mqtt": True, "influxdb": True, "sql": True, "alert-store": True,
        **{f"task:{t}": True for t in tasks}}


def test_demo_reports_what_it_stored(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "URBANWATCH_MQTT__PORT": str(free_port()),
        "URBANWATCH_INFLUX__PORT": str(free_port()),
        "URBANWATCH_API__PORT": str(free_port()),
    }
    run = subprocess.run(
        [sys.executable, "-m", "urbanwatch", "demo", "--duration", "4", "--devices", "150",
         "--rate", "1000", "--state-dir", str(tmp_path / "state"), "--json"],
        env=env, capture_output=True, text=True, timeout=100, check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(summary) == {"published", "stored", "rejected", "alerts", "incidents"}
    assert summary["published"] > 1000
    assert summary["stored"] == summary["published"]
    assert summary["rejected"] == 0
    for name in ("URBANWATCH_MQTT__PORT", "URBANWATCH_INFLUX__PORT"):
        assert not port_open(int(env[name])), f"{name}: the demo left its service running"
