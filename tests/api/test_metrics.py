"""`GET /metrics`: Prometheus text that says exactly what the platform counted."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST

from api.app import create_app
from api.context import ApiContext, TokenPolicy
from api.security.principal import Role
from devices.catalogue import load_catalogue
from ingest.timeseries.client import InfluxClient
from simulators.city import build_city
from tests.support.auth import SECRET, bearer
from tests.support.platform_process import by_label, parse_metrics, sample
from tests.support.polling import eventually
from tests.support.streams import Outgoing, Stream, as_json, readings
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.demo import import_city
from urbanwatch.platform import Platform
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

LATENCY = "urbanwatch_http_request_duration_seconds"


async def test_a_running_platform_exposes_what_it_counted(
    settings: Settings, mosquitto: Mosquitto, topic_prefix: str, influx_db: InfluxClient,
) -> None:
    settings.api.port = free_port()
    await import_city(settings, n_devices=30, seed=3)
    city = build_city(30, 3, load_catalogue())
    good = readings(city, 4, t0_ms=time.time_ns() // 1_000_000 - 600_000)
    device = city.devices[0]
    bad = [
        Outgoing(f"city/{device.district}/{device.id}/data", b"{not json"),
        Outgoing(f"city/{device.district}/{device.id}/data", b"\xff\xfe"),
        Outgoing(f"city/{device.district}/ghost/data", b'{"m": {"x": 1}}'),
    ]
    metric = next(iter(city.catalogue[device.type].metrics.values()))
    mixed = Outgoing(f"city/{device.district}/{device.id}/data",
                     json.dumps({"m": {metric.name: metric.min, "bogus": 1}}).encode())
    stop = asyncio.Event()
    async with Platform(settings) as platform:
        assert platform.ingestor is not None and platform.judge is not None
        runner = asyncio.create_task(platform.run(stop))
        await platform.ingestor.wait_ready(timeout_s=20)
        stream = Stream(mosquitto.host, mosquitto.port, topic_prefix,
                        [as_json(city, r) for r in good] + bad + [mixed]).start()
        counters = platform.ingestor.counters
        await eventually(lambda: counters.stored_readings == len(good) + 1
                         and counters.dead_lettered == len(bad) + 1, "every message handled")
        stream.close()
        async with httpx.AsyncClient(base_url=platform.endpoints.api_url) as api:
            assert (await api.get("/readyz")).status_code == 200
            response = await api.get("/metrics")
        evaluations = platform.judge.evaluations
        stop.set()
        await runner

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    m = parse_metrics(response.text)
    assert sample(m, "urbanwatch_ingest_received_messages_total") == len(good) + len(bad) + 1
    assert sample(m, "urbanwatch_ingest_stored_messages_total") == len(good) + 1
    assert sample(m, "urbanwatch_ingest_stored_readings_total") == len(good) + 1
    assert by_label(m, "urbanwatch_ingest_rejected_messages_total", "reason") == {
        "malformed_json": 2, "unknown_device": 1}
    assert by_label(m, "urbanwatch_ingest_rejected_readings_total", "reason") == {
        "unknown_metric": 1}
    assert sample(m, "urbanwatch_ingest_dead_letters_total") == len(bad) + 1
    assert sample(m, "urbanwatch_ingest_redelivered_messages_total") == 0
    assert sample(m, "urbanwatch_ingest_spooled_readings_total") == 0
    assert sample(m, "urbanwatch_ingest_spool_bytes") == 0
    assert sample(m, "urbanwatch_ingest_lag_seconds") >= 0
    assert 1 <= sample(m, "urbanwatch_engine_evaluate_seconds_count") <= evaluations
    assert sample(m, "urbanwatch_engine_evaluate_seconds_sum") > 0
    assert sample(m, "urbanwatch_alerts_outbox_pending") >= 0
    assert ("urbanwatch_alerts_outbox_pending", ()) in m
    assert ("urbanwatch_alerts_held_detections", ()) in m
    assert sample(m, "urbanwatch_alerts_held_detections") == 0
    assert sample(m, "urbanwatch_alerts_store_failures_total") == 0
    assert sample(m, f"{LATENCY}_count", method="GET", route="/readyz", status="200") == 1


@pytest.fixture
async def context(tmp_path: Path, influx_db: InfluxClient) -> AsyncIterator[ApiContext]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'uw.db'}"
    await migrate(url)
    engine = create_engine(url)
    yield ApiContext(sessions=create_session_factory(engine), influx=influx_db,
                     catalogue=load_catalogue(), tokens=TokenPolicy(SECRET))
    await engine.dispose()


async def scrape(app: FastAPI, *paths: str) -> dict:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in paths:
            await client.get(path, headers=bearer(Role.viewer))
        response = await client.get("/metrics")  # unauthenticated
    assert response.status_code == 200
    return parse_metrics(response.text)


async def test_latency_is_labelled_by_route_template_and_each_app_has_its_own_registry(
    context: ApiContext,
) -> None:
    first, second = create_app(context), create_app(context)  # no clash between registries

    m = await scrape(first, "/api/v1/devices/aq-1", "/api/v1/devices/aq-2", "/nowhere",
                     "/healthz")
    assert sample(m, f"{LATENCY}_count", method="GET", route="/api/v1/devices/{device_id}",
                  status="404") == 2
    assert sample(m, f"{LATENCY}_count", method="GET", route="unmatched", status="404") == 1
    assert sample(m, f"{LATENCY}_count", method="GET", route="/healthz", status="200") == 1
    assert not any("aq-1" in str(labels) for _, labels in m)

    other = await scrape(second)
    assert not any(name == f"{LATENCY}_count" for name, _ in other)
    assert not any(name.startswith("urbanwatch_ingest") for name, _ in other)  # none given
