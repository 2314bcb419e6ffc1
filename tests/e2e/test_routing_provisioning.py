"""Every route of the shipped routing file, hit by devices provisioned the ways users do.

A real `urbanwatch serve` process (its own managed Mosquitto with device logins, the session's
influxd, SQLite) per variant: devices added one by one while it runs, as a new user starts
(`urbanwatch devices add` in another process, and the API), without areas; device files
imported while it runs together with districts and grid cells (`urbanwatch devices import
--areas`, then the API import located in the stored areas); and a small city file imported
before it starts. For each route of the shipped file one device per way publishes readings
that raise an alert of that route's kind with the login it was just given, and the incident
must go to that route's team (in the device's grid cell, where areas were imported). Every
reading is stored: none is dead-lettered as coming from an unknown device.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

from alerts.routing import load_routing
from devices.clock import now_ms
from tests.support.platform_process import PlatformProcess, sample, serving
from tests.support.polling import eventually
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(300)
ADMIN, ADMIN_PASSWORD = "admin", "admin-" + uuid.uuid4().hex
MINUTE_MS = 60_000
CATCH_ALL_RULE = {  # no shipped rule reaches the catch-all: safety from a weather station
    "id": "heat-hazard", "category": "safety", "when": "value > 45", "severity": "red",
    "match": {"device_type": ["weather"], "metric": ["temp_c"]},
}


@dataclass(frozen=True)
class Case:
    """Readings (one per minute, the last one now) that raise an alert of one route's kind."""

    type: str
    metric: str
    values: tuple[float, ...]
    attributes: tuple[tuple[str, float], ...] = ()


CASES = [  # in the order of the shipped routes
    Case("gas", "lel_pct", (70,)),  # gas company
    Case("smoke", "obscuration_pct_m", (5,)),  # fire and rescue
    Case("water_level", "level_m", (3.5,), (("warning_level", 3.0), ("guaranteed_level", 4.0),
                                            ("historical_max_level", 5.0))),  # water authority
    Case("air_quality", "o3", (500,) * 12),  # environment, orange: enforcement (`for: 10m`)
    Case("air_quality", "o3", (250,) * 12),  # environment, yellow: monitoring
    Case("traffic_flow", "speed_kmh", (10,) * 8),  # traffic police (`for: 5m`)
    Case("manhole", "cover_open", (1, 1, 1)),  # city management (`for: 1m`)
    Case("weather", "temp_c", (50,)),  # the catch-all (with CATCH_ALL_RULE)
]


@pytest.fixture
def managed_settings(tmp_path: Path, influxd, influx_db) -> Settings:  # type: ignore[no-untyped-def]
    """A broker of the platform's own (device logins and ACLs), the session's influxd."""
    return Settings(
        state_dir=tmp_path / "state",
        mqtt={"port": free_port(), "client_id": f"uw-route-{uuid.uuid4().hex[:8]}"},
        influx={"url": influxd.url, "port": influxd.port, "database": influx_db.database},
    )


@dataclass(frozen=True)
class Variant:
    """How the devices are provisioned: by each of `ways`, one device per case and way."""

    id: str
    ways: tuple[str, ...]
    areas: bool = False  # with districts and grid cells: device files, located in them
    before_start: bool = False  # imported before the platform starts


VARIANTS = [
    Variant("added-while-running", ("cli", "api")),
    Variant("imported-with-areas", ("cli", "api"), areas=True),
    Variant("imported-before-start", ("cli",), areas=True, before_start=True),
]


@dataclass(frozen=True)
class Placed:
    """One case's device for one way: in a district (and grid cell) of its own."""

    case: Case
    device_id: str
    district: str
    grid: str
    lon: float

    @classmethod
    def of(cls, way: str, n: int) -> Placed:
        k = n + (len(CASES) if way == "api" else 0)
        return cls(CASES[n], f"{CASES[n].type}-{way}-{n}", f"D{way}{n}", f"G{way}{n}",
                   116.0 + 2 * k * CELL_DEG)  # cells apart: no two are neighbours (grouping)


CELL_DEG = 0.01
LAT = 39.9


def placed(way: str) -> list[Placed]:
    return [Placed.of(way, n) for n in range(len(CASES))]




def urbanwatch(process: PlatformProcess, *args: str, stdin: str = "") -> str:
    """Run the `urbanwatch` CLI on the platform's state folder; its stdout."""
    command = [str(Path(sys.executable).with_name("urbanwatch")), *args,
               "--state-dir", str(process.settings.state_dir)]
    done = subprocess.run(command, env=process.env, input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
    return done.stdout


def add_by_cli(process: PlatformProcess, device: Placed) -> dict[str, str]:
    """`urbanwatch devices add`; the MQTT password it prints, by device id."""
    attrs = [part for name, value in device.case.attributes
             for part in ("--attr", f"{name}={value}")]
    out = urbanwatch(process, "devices", "add", device.device_id, "--type", device.case.type,
                     "--district", device.district, "--lat", str(LAT), "--lon", str(device.lon),
                     *attrs, "--json")
    return {device.device_id: str(json.loads(out)["mqtt"]["password"])}


async def add_by_api(api: httpx.AsyncClient, device: Placed) -> dict[str, str]:
    body = {"id": device.device_id, "type": device.case.type, "district": device.district,
            "lat": LAT, "lon": device.lon, "attributes": dict(device.case.attributes)}
    response = await api.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    return {device.device_id: str(response.json()["mqtt"]["password"])}


def areas_file(path: Path) -> Path:
    """A district with one grid cell (a square of `CELL_DEG`) for every device of every way."""
    def square(d: Placed) -> dict:
        lon0, lat0 = d.lon - CELL_DEG / 2, LAT - CELL_DEG / 2
        ring = [[lon0, lat0], [lon0 + CELL_DEG, lat0], [lon0 + CELL_DEG, lat0 + CELL_DEG],
                [lon0, lat0 + CELL_DEG], [lon0, lat0]]
        return {"type": "Polygon", "coordinates": [ring]}

    features = [feature for way in ("cli", "api") for d in placed(way) for feature in (
        {"type": "Feature", "geometry": square(d),
         "properties": {"id": d.district, "kind": "district"}},
        {"type": "Feature", "geometry": square(d),
         "properties": {"id": d.grid, "kind": "grid", "district": d.district}})]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def device_file(way: str) -> dict:
    """The way's devices as GeoJSON points without district or grid: the areas locate them."""
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [d.lon, LAT]},
                 "properties": {"id": d.device_id, "type": d.case.type,
                                "attributes": dict(d.case.attributes)}} for d in placed(way)]
    return {"type": "FeatureCollection", "features": features}


def import_by_cli(process: PlatformProcess, tmp_path: Path) -> dict[str, str]:
    """`urbanwatch devices import --areas` of the CLI's devices; their passwords by id."""
    path = tmp_path / "devices.geojson"
    path.write_text(json.dumps(device_file("cli")))
    out = urbanwatch(process, "devices", "import", str(path), "--areas",
                     str(areas_file(tmp_path / "areas.geojson")), "--json")
    return {c["device_id"]: c["password"] for c in json.loads(out)["credentials"]}


async def import_by_api(api: httpx.AsyncClient) -> dict[str, str]:
    """The API import of the API's devices, located in the areas the CLI stored."""
    response = await api.post("/api/v1/devices/import", content=json.dumps(device_file("api")),
                              headers={"content-type": "application/geo+json"})
    assert response.status_code == 200, response.text
    return {c["device_id"]: c["password"] for c in response.json()["credentials"]}


async def provision(variant: Variant, way: str, process: PlatformProcess,
                    api: httpx.AsyncClient, tmp_path: Path) -> dict[str, str]:
    """The way's devices, provisioned as `variant` says; their passwords by device id."""
    if variant.areas:
        return import_by_cli(process, tmp_path) if way == "cli" else await import_by_api(api)
    logins: dict[str, str] = {}
    for device in placed(way):
        logins |= (add_by_cli(process, device) if way == "cli"
                   else await add_by_api(api, device))
    return logins


def publish(port: int, device: Placed, password: str) -> None:
    """The case's readings as the device itself, QoS 1, each acknowledged by the broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device.device_id)
    client.username_pw_set(device.device_id, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        values, last_ms = device.case.values, now_ms()
        for k, value in enumerate(values):
            ts_ms = last_ms - (len(values) - 1 - k) * MINUTE_MS
            payload = json.dumps({"ts": ts_ms, "m": {device.case.metric: value}})
            info = client.publish(f"city/{device.district}/{device.device_id}/data", payload,
                                  qos=1)
            info.wait_for_publish(10)
            assert info.is_published(), f"{device.device_id}: no PUBACK (login refused?)"
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.asynccontextmanager
async def admin_client(process: PlatformProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An API client logged in as an admin added with `urbanwatch users add`."""
    urbanwatch(process, "users", "add", ADMIN, "--role", "admin", "--password-stdin",
               stdin=ADMIN_PASSWORD + "\n")
    async with httpx.AsyncClient(base_url=process.api_url, timeout=10.0) as api:
        login = await api.post("/api/v1/auth/token",
                               data={"username": ADMIN, "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield api


async def add_rule(process: PlatformProcess, api: httpx.AsyncClient, rule: dict) -> None:
    """Add `rule` through the API; return once the engine runs it (it reloads a changed rule
    file before a tick: two ticks after the write)."""
    async def ticks() -> float:
        return sample(await process.metrics(), "urbanwatch_engine_tick_seconds_count")

    written = await ticks()
    created = await api.post("/api/v1/rules", json=rule)
    assert created.status_code == 201, created.text

    async def reloaded() -> bool:
        return await ticks() >= written + 2

    await eventually(reloaded, "the engine to take the new rule")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
async def test_every_shipped_route_reached_by_provisioned_devices(
    variant: Variant, managed_settings: Settings, tmp_path: Path,
) -> None:
    routes = load_routing().routes
    assert len(routes) == len(CASES), "a route of the shipped file has no case here"
    process = PlatformProcess(managed_settings, tmp_path / "serve.log")
    before = import_by_cli(process, tmp_path) if variant.before_start else {}
    expected: dict[str, tuple[str, list[str]]] = {}  # district → (team, grid cells)
    async with serving(process), admin_client(process) as api:
        await add_rule(process, api, CATCH_ALL_RULE)
        for way in variant.ways:
            logins = before or await provision(variant, way, process, api, tmp_path)
            for n, device in enumerate(placed(way)):
                publish(process.settings.mqtt.port, device, logins[device.device_id])
                expected[device.district] = (routes[n].team, [device.grid] if variant.areas else [])

        async def incidents() -> dict[str, tuple[str | None, list[str]]]:
            page = (await api.get("/api/v1/incidents", params={"limit": 100})).json()
            return {d: (i["team_id"], i["grids"]) for i in page["items"] for d in i["districts"]}

        async def all_routed() -> bool:
            return expected.keys() <= (await incidents()).keys()

        with contextlib.suppress(pytest.fail.Exception):  # the comparison below says what lacks
            await eventually(all_routed, "an incident in every district", 60, interval_s=0.5)
        teams = await incidents()
        assert {d: teams.get(d) for d in expected} == expected
        samples = await process.metrics()
    published = sum(len(c.values) for c in CASES) * len(variant.ways)
    assert sample(samples, "urbanwatch_ingest_dead_letters_total") == 0
    assert sample(samples, "urbanwatch_ingest_stored_readings_total") == published
