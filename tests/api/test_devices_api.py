"""The first API endpoints against real SQLite and InfluxDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.context import ApiContext
from devices.catalogue import load_catalogue
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from ingest.influx import InfluxClient
from tests.support.auth import SECRET
from urbanwatch.database import create_engine, create_session_factory, migrate

T0_MS = 1_794_999_960_000  # 2026-11-18, on a whole minute
DEVICES = [
    Device("aq-0001", "air_quality", "dongcheng", 39.9, 116.4, "g-0-0", "environment_bureau"),
    Device("wl-0001", "water_level", "xicheng", 39.91, 116.41, "g-0-1", "water_authority"),
    Device("wl-0002", "water_level", "xicheng", 39.92, 116.42, "g-0-1", "water_authority",
           status=DeviceStatus.MAINTENANCE),
]


@pytest.fixture
async def api(tmp_path: Path, influx_db: InfluxClient) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'uw.db'}"
    await migrate(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    await DeviceStore(sessions).add(DEVICES)
    lines = "\n".join(
        f"water_level,device_id=wl-0001,district=xicheng,grid=g-0-1 level_m={1.0 + i / 8} "
        f"{T0_MS + i * 15_000}"
        for i in range(8)
    )
    await influx_db.write(lines.encode())
    context = ApiContext(
        sessions=sessions, influx=influx_db, catalogue=load_catalogue(), secret_key=SECRET
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await engine.dispose()


async def test_list_filters_and_pages(api: httpx.AsyncClient) -> None:
    everything = (await api.get("/api/v1/devices")).json()
    assert everything["total"] == 3 and [d["id"] for d in everything["items"]] == [
        "aq-0001", "wl-0001", "wl-0002"]
    water = (await api.get("/api/v1/devices", params={"type": "water_level", "limit": 1})).json()
    assert water["total"] == 2 and [d["id"] for d in water["items"]] == ["wl-0001"]
    page2 = (await api.get("/api/v1/devices", params={"type": "water_level", "limit": 1,
                                                      "offset": 1})).json()
    assert [d["id"] for d in page2["items"]] == ["wl-0002"]
    active = (await api.get("/api/v1/devices", params={"status": "maintenance"})).json()
    assert [d["id"] for d in active["items"]] == ["wl-0002"]


async def test_get_one_and_unknown(api: httpx.AsyncClient) -> None:
    one = await api.get("/api/v1/devices/aq-0001")
    assert one.status_code == 200
    assert one.json()["district"] == "dongcheng" and one.json()["status"] == "active"
    missing = await api.get("/api/v1/devices/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


async def test_raw_readings_are_what_was_written(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/devices/wl-0001/readings", params={
        "metric": "level_m", "start": "2026-11-18T00:00:00Z", "end": "2026-11-20T00:00:00Z"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["unit"] == "m" and body["every"] is None
    assert [(p["ts_ms"], p["value"]) for p in body["points"]] == [
        (T0_MS + i * 15_000, 1.0 + i / 8) for i in range(8)]


async def test_aggregated_readings(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/devices/wl-0001/readings", params={
        "metric": "level_m", "start": "2026-11-18T00:00:00Z", "end": "2026-11-20T00:00:00Z",
        "every": "1m", "aggregate": "max"})
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    assert [(p["ts_ms"], p["value"]) for p in points] == [
        (T0_MS, 1.0 + 3 / 8), (T0_MS + 60_000, 1.0 + 7 / 8)]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"metric": "pm25"}, 422),
        ({}, 422),
        ({"metric": "level_m", "every": "1 minute"}, 422),
        ({"metric": "level_m", "every": "0s"}, 422),
        ({"metric": "level_m", "start": "2026-11-20T00:00:00Z", "end": "2026-11-18T00:00:00Z"},
         422),
        ({"metric": "level_m", "start": "2026-11-18T00:00:00"}, 422),
        ({"metric": "level_m", "start": "yesterday"}, 422),
        ({"metric": "level_m", "aggregate": "drop"}, 422),
    ],
    ids=["wrong-metric", "no-metric", "bad-every", "zero-every", "reversed", "naive-time",
         "not-a-time", "bad-aggregate"],
)
async def test_bad_readings_requests_are_4xx(
    api: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await api.get("/api/v1/devices/wl-0001/readings", params=params)
    assert response.status_code == status
    assert response.json()["detail"]


async def test_health_and_openapi(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {}
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert {"/api/v1/devices", "/api/v1/devices/{device_id}",
            "/api/v1/devices/{device_id}/readings"} <= set(paths)
    assert all(op.get("summary") for ops in paths.values() for op in ops.values())
