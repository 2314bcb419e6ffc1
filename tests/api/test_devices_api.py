"""The devices endpoints against real SQLite and InfluxDB (and a real secured broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.context import ApiContext, TokenPolicy
from api.security.principal import Role
from devices.catalogue import load_catalogue
from devices.geo import parse_geography
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from tests.support.auth import SECRET, bearer
from urbanwatch.database import create_engine, create_session_factory, migrate

OPERATOR = bearer(Role.operator)
T0_MS = 1_794_999_960_000  # 2026-11-18, on a whole minute
DEVICES = [
    Device("aq-0001", "air_quality", "dongcheng", 39.9, 116.4, "g-0-0", "environment_bureau"),
    Device("wl-0001", "water_level", "xicheng", 39.91, 116.41, "g-0-1", "water_authority"),
    Device("wl-0002", "water_level", "xicheng", 39.92, 116.42, "g-0-1", "water_authority",
           status=DeviceStatus.MAINTENANCE),
]


@dataclass
class Changes:
    calls: int = 0

    async def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
async def api(
    tmp_path: Path, influx_db: InfluxClient, changes: Changes
) -> AsyncIterator[httpx.AsyncClient]:
    """A client reading as a viewer; writes pass `headers=OPERATOR`."""
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
        sessions=sessions, influx=influx_db, catalogue=load_catalogue(),
        tokens=TokenPolicy(SECRET),
        on_devices_changed=changes,
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=bearer(Role.viewer)
    ) as client:
        yield client
    await engine.dispose()


def _square(lon: float, lat: float, size: float) -> list:
    return [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size],
             [lon, lat]]]


AREAS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"id": "west", "kind": "district"},
     "geometry": {"type": "Polygon", "coordinates": _square(0, 0, 2)}},
    {"type": "Feature", "properties": {"id": "w-0-0", "kind": "grid", "district": "west"},
     "geometry": {"type": "Polygon", "coordinates": _square(0, 0, 1)}},
]}


@pytest.fixture
async def api_areas(api: httpx.AsyncClient, tmp_path: Path) -> httpx.AsyncClient:
    """`api` with the district "west" and its grid cell w-0-0 stored."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'uw.db'}")
    await DeviceStore(create_session_factory(engine)).put_areas(parse_geography(AREAS).areas())
    await engine.dispose()
    return api


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


async def test_the_map_gets_every_device_in_columns_and_a_304_while_none_changed(
    api: httpx.AsyncClient,
) -> None:
    first = await api.get("/api/v1/map/devices")
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    assert first.json() == {
        "total": 3, "id": ["aq-0001", "wl-0001", "wl-0002"],
        "type": ["air_quality", "water_level", "water_level"],
        "district": ["dongcheng", "xicheng", "xicheng"], "grid": ["g-0-0", "g-0-1", "g-0-1"],
        "lat": [39.9, 39.91, 39.92], "lon": [116.4, 116.41, 116.42],
        "status": ["active", "active", "maintenance"],
    }
    etag = first.headers["etag"]
    again = await api.get("/api/v1/map/devices", headers={"If-None-Match": f'"x", W/{etag}'})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)

    await api.patch("/api/v1/devices/wl-0002", json={"status": "active"}, headers=OPERATOR)
    changed = await api.get("/api/v1/map/devices", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["status"] == ["active"] * 3
    assert (await api.get("/api/v1/map/devices", headers={"Authorization": ""})).status_code == 401


async def test_areas_carry_an_etag_and_a_304_while_they_stay(
    api_areas: httpx.AsyncClient,
) -> None:
    first = await api_areas.get("/api/v1/areas")
    assert [f["properties"]["id"] for f in first.json()["features"]] == ["west", "w-0-0"]
    again = await api_areas.get("/api/v1/areas", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    grids = await api_areas.get("/api/v1/areas", params={"kind": "grid"},
                                headers={"If-None-Match": first.headers["etag"]})
    assert grids.status_code == 200 and len(grids.json()["features"]) == 1


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
        ({"metric": "level_m", "start": "1600-01-01T00:00:00Z", "end": "1601-01-01T00:00:00Z"},
         422),
        ({"metric": "level_m", "end": "9999-12-31T23:59:59Z"}, 422),
    ],
    ids=["wrong-metric", "no-metric", "bad-every", "zero-every", "reversed", "naive-time",
         "not-a-time", "bad-aggregate", "before-influx-time", "after-influx-time"],
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


NEW = {"id": "aq-0100", "type": "air_quality", "district": "dongcheng", "lat": 39.9,
       "lon": 116.4, "department": "environment_bureau"}
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/devices", {"json": NEW}),
    ("PATCH", "/api/v1/devices/aq-0001", {"json": {"department": "x"}}),
    ("POST", "/api/v1/devices/aq-0001/credentials", {}),
    ("POST", "/api/v1/devices/aq-0001/retire", {}),
    ("POST", "/api/v1/devices/import",
     {"content": b"id,type,district,lat,lon\nn-1,noise,xicheng,1,1\n",
      "headers": {"content-type": "text/csv"}}),
]
READS = ["/api/v1/devices", "/api/v1/devices/aq-0001", "/api/v1/devices/aq-0001/latest",
         "/api/v1/devices/wl-0001/readings?metric=level_m"]


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_reads_and_only_admins_and_operators_write(
    api: httpx.AsyncClient, role: Role
) -> None:
    auth = bearer(role, "team-a")
    for path in READS:
        assert (await api.get(path, headers=auth)).status_code == 200, path
    for method, path, kwargs in WRITES:
        headers = {**kwargs.get("headers", {}), **auth}
        args = {k: v for k, v in kwargs.items() if k != "headers"}
        response = await api.request(method, path, headers=headers, **args)
        allowed = role in (Role.admin, Role.operator)
        assert response.status_code in ((200, 201) if allowed else (403,)), (path, response.text)


async def test_every_devices_route_needs_a_caller(api: httpx.AsyncClient) -> None:
    anonymous = {"Authorization": ""}
    for path in READS:
        assert (await api.get(path, headers=anonymous)).status_code == 401
    for method, path, _ in WRITES:
        response = await api.request(method, path, headers=anonymous, json={})
        assert response.status_code == 401 and response.json()["detail"]


async def test_create_shows_the_login_once_and_keeps_only_its_hash(
    api: httpx.AsyncClient, changes: Changes, tmp_path: Path
) -> None:
    response = await api.post("/api/v1/devices", json=NEW, headers=OPERATOR)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["device"]["id"] == "aq-0100" and body["device"]["status"] == "active"
    login = body["mqtt"]
    assert login["username"] == "aq-0100" and len(login["password"]) >= 24
    assert changes.calls == 1
    shown = (await api.get("/api/v1/devices/aq-0100")).text
    assert login["password"] not in shown and "password" not in shown
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("uw.db*"))  # with the WAL
    assert login["password"].encode() not in stored and b"$7$101$" in stored


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"id": "aq-0001"}, 409, "already exists"),
        ({"type": "rocket"}, 422, "unknown device type 'rocket'"),
        ({"id": "a/b"}, 422, "bad device id"),
        ({"lat": 91}, 422, "less than or equal to 90"),
        ({"gateway": "gw-9"}, 422, "unknown gateway 'gw-9'"),
        ({"gateway": "aq-0100"}, 422, "its own gateway"),
        ({"id": "aq:9"}, 422, "bad device id 'aq:9': ':' at position 2"),
        ({"colour": "red"}, 422, "Extra inputs are not permitted"),
        ({"attributes": {"warning-level": 3}}, 422,
         "device aq-0100: attribute name 'warning-level' is not an identifier"),
        ({"attributes": {"warning_level": "high"}}, 422, "valid number"),
    ],
    ids=["duplicate", "unknown-type", "bad-id", "bad-lat", "unknown-gateway", "self-gateway",
         "no-username", "unknown-field", "bad-attribute-name", "bad-attribute-value"],
)
async def test_bad_creates_are_4xx_with_a_reason(
    api: httpx.AsyncClient, changes: Changes, change: dict, status: int, reason: str
) -> None:
    response = await api.post("/api/v1/devices", json=NEW | change, headers=OPERATOR)

    assert response.status_code == status
    assert reason in response.text
    assert changes.calls == 0
    assert (await api.get("/api/v1/devices")).json()["total"] == 3


async def test_an_installation_date_is_taken_on_create_and_update(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/api/v1/devices", json=NEW | {"installed": "2024-05-01"},
                             headers=OPERATOR)
    updated = await api.patch("/api/v1/devices/aq-0100", json={"installed": "2025-01-31"},
                              headers=OPERATOR)

    assert created.status_code == 201, created.text
    assert created.json()["device"]["installed"] == "2024-05-01"
    assert updated.status_code == 200 and updated.json()["installed"] == "2025-01-31"


async def test_unknown_district_is_422_once_areas_are_stored(
    api_areas: httpx.AsyncClient,
) -> None:
    bad = await api_areas.post("/api/v1/devices", json=NEW | {"district": "atlantis"},
                               headers=OPERATOR)
    good = await api_areas.post("/api/v1/devices", json=NEW | {"lat": 0.5, "lon": 0.5,
                                                               "district": "west"},
                                headers=OPERATOR)

    assert bad.status_code == 422 and "unknown district 'atlantis'" in bad.json()["detail"]
    assert good.status_code == 201 and good.json()["device"]["grid"] == "w-0-0"  # located


async def test_update_and_retire(api: httpx.AsyncClient, changes: Changes) -> None:
    updated = await api.patch("/api/v1/devices/aq-0001", json={"department": "eb", "lat": 40.0},
                              headers=OPERATOR)
    retired = await api.post("/api/v1/devices/aq-0001/retire", headers=OPERATOR)

    assert updated.status_code == 200, updated.text
    assert (updated.json()["department"], updated.json()["lat"]) == ("eb", 40.0)
    assert updated.json()["district"] == "dongcheng" and updated.json()["type"] == "air_quality"
    assert retired.json()["status"] == "retired"
    assert (await api.get("/api/v1/devices/aq-0001")).json()["status"] == "retired"
    assert changes.calls == 2
    for path, body, status in [
        ("/api/v1/devices/nope", {"department": "x"}, 404),
        ("/api/v1/devices/aq-0001", {"status": "exploded"}, 422),
        ("/api/v1/devices/aq-0001", {"type": "noise"}, 422),
        ("/api/v1/devices/aq-0001", {"gateway": "gw-9"}, 422),
    ]:
        response = await api.patch(path, json=body, headers=OPERATOR)
        assert response.status_code == status and response.json()["detail"], body
    assert (await api.post("/api/v1/devices/nope/retire", headers=OPERATOR)).status_code == 404


async def test_import_is_all_or_nothing(api: httpx.AsyncClient, changes: Changes) -> None:
    csv = {"content-type": "text/csv", **OPERATOR}
    good = "id,type,district,lat,lon\naq-0001,air_quality,dongcheng,1,1\nn-1,noise,xicheng,1,1\n"
    bad = "id,type,district,lat,lon\nn-2,noise,xicheng,1,1\nn-3,rocket,xicheng,1,1\nn-4\n"

    imported = await api.post("/api/v1/devices/import", content=good, headers=csv)
    rejected = await api.post("/api/v1/devices/import", content=bad, headers=csv)
    wrong_type = await api.post("/api/v1/devices/import", content=good,
                                headers={"content-type": "text/plain", **OPERATOR})

    assert imported.status_code == 200, imported.text
    assert imported.json() | {"credentials": None} == {
        "imported": 2, "new": 1, "updated": 1, "credentials": None}
    # aq-0001 was stored without a login (by the fixture); a login is never replaced by import
    assert [c["device_id"] for c in imported.json()["credentials"]] == ["aq-0001", "n-1"]
    again = await api.post("/api/v1/devices/import", content=good, headers=csv)
    assert again.json()["credentials"] == []
    assert rejected.status_code == 422
    problems = rejected.json()["problems"]
    assert len(problems) == 2 and problems[0].startswith("line 3: unknown device type 'rocket'")
    assert wrong_type.status_code == 415
    assert (await api.get("/api/v1/devices")).json()["total"] == 4  # n-2 was not written
    assert changes.calls == 2


async def test_import_geojson(api: httpx.AsyncClient) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
               "properties": {"id": "g-1", "type": "gas", "district": "dongcheng"}}
    response = await api.post(
        "/api/v1/devices/import", json={"type": "FeatureCollection", "features": [feature]},
        headers={"content-type": "application/geo+json", **OPERATOR},
    )
    assert response.status_code == 200, response.text
    assert response.json()["new"] == 1
    assert (await api.get("/api/v1/devices/g-1")).json()["lat"] == 39.9


async def test_attributes_are_created_listed_replaced_and_imported(
    api: httpx.AsyncClient,
) -> None:
    levels = {"warning_level": 3.0, "guaranteed_level": 4.0, "historical_max_level": 5.5}
    gauge = NEW | {"id": "wl-0100", "type": "water_level", "attributes": levels}
    created = await api.post("/api/v1/devices", json=gauge, headers=OPERATOR)
    assert created.status_code == 201, created.text
    assert created.json()["device"]["attributes"] == levels
    assert (await api.get("/api/v1/devices/wl-0100")).json()["attributes"] == levels

    kept = await api.patch("/api/v1/devices/wl-0100", json={"department": "wa"},
                           headers=OPERATOR)
    replaced = await api.patch("/api/v1/devices/wl-0100",
                               json={"attributes": {"warning_level": 2.5}}, headers=OPERATOR)
    assert kept.json()["attributes"] == levels
    assert replaced.status_code == 200 and replaced.json()["attributes"] == {"warning_level": 2.5}

    csv = {"content-type": "text/csv", **OPERATOR}
    body = ("id,type,district,lat,lon,attr.warning_level\n"
            "wl-0001,water_level,xicheng,39.91,116.41,3.25\naq-0001,air_quality,dongcheng,1,1,\n")
    imported = await api.post("/api/v1/devices/import", content=body, headers=csv)
    assert imported.status_code == 200, imported.text
    assert (await api.get("/api/v1/devices/wl-0001")).json()["attributes"] == {
        "warning_level": 3.25}
    assert (await api.get("/api/v1/devices/aq-0001")).json()["attributes"] == {}
    bad = await api.post("/api/v1/devices/import", content=body.replace("3.25", "inf"),
                         headers=csv)
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        "line 2: device wl-0001: attribute 'warning_level' must be finite, not inf"]


async def test_rotate_credentials(api: httpx.AsyncClient) -> None:
    first = (await api.post("/api/v1/devices/aq-0001/credentials", headers=OPERATOR)).json()
    second = (await api.post("/api/v1/devices/aq-0001/credentials", headers=OPERATOR)).json()

    assert first["username"] == "aq-0001" and first["password"] != second["password"]
    assert (await api.post("/api/v1/devices/nope/credentials",
                           headers=OPERATOR)).status_code == 404
    await api.post("/api/v1/devices/aq-0001/retire", headers=OPERATOR)
    retired = await api.post("/api/v1/devices/aq-0001/credentials", headers=OPERATOR)
    assert retired.status_code == 409 and "retired" in retired.json()["detail"]


async def test_latest_readings(api: httpx.AsyncClient) -> None:
    latest = (await api.get("/api/v1/devices/wl-0001/latest")).json()
    empty = (await api.get("/api/v1/devices/aq-0001/latest")).json()

    assert latest == {"device_id": "wl-0001", "readings": [
        {"metric": "level_m", "unit": "m", "ts_ms": T0_MS + 7 * 15_000, "value": 1.0 + 7 / 8}]}
    assert empty == {"device_id": "aq-0001", "readings": []}
    assert (await api.get("/api/v1/devices/nope/latest")).status_code == 404
