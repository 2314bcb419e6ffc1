"""Every route of the shipped routing file, hit by devices provisioned while the platform runs.

A real `urbanwatch serve` process (its own managed Mosquitto with device logins, the session's
influxd, SQLite) and no imported areas, as a new user starts. For each route of the shipped
file one device is added with `urbanwatch devices add` (another process) and one through the
API; each publishes at once with the login it was just given, readings that raise an alert of
that route's kind, and the incident must go to that route's team. Every reading is stored:
none is dead-lettered as coming from an unknown device.
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
from tests.support.platform_process import PlatformProcess, sample
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


@pytest.fixture
async def platform(managed_settings: Settings, tmp_path: Path
                   ) -> AsyncIterator[PlatformProcess]:
    process = PlatformProcess(managed_settings, tmp_path / "serve.log")
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        code = process.stop()
    assert code == 0, f"urbanwatch serve did not stop cleanly ({code}):\n{process.log_tail()}"


def urbanwatch(process: PlatformProcess, *args: str, stdin: str = "") -> str:
    """Run the `urbanwatch` CLI on the platform's state folder; its stdout."""
    command = [str(Path(sys.executable).with_name("urbanwatch")), *args,
               "--state-dir", str(process.settings.state_dir)]
    done = subprocess.run(command, env=process.env, input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
    return done.stdout


def add_by_cli(process: PlatformProcess, device_id: str, case: Case, district: str) -> str:
    """`urbanwatch devices add`; the MQTT password it prints."""
    attrs = [part for name, value in case.attributes for part in ("--attr", f"{name}={value}")]
    out = urbanwatch(process, "devices", "add", device_id, "--type", case.type, "--district",
                     district, "--lat", "39.9", "--lon", "116.4", *attrs, "--json")
    return str(json.loads(out)["mqtt"]["password"])


async def add_by_api(api: httpx.AsyncClient, device_id: str, case: Case, district: str) -> str:
    body = {"id": device_id, "type": case.type, "district": district, "lat": 39.9, "lon": 116.4,
            "attributes": dict(case.attributes)}
    response = await api.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["mqtt"]["password"])


def publish(port: int, device_id: str, password: str, district: str, case: Case) -> None:
    """The case's readings as the device itself, QoS 1, each acknowledged by the broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id)
    client.username_pw_set(device_id, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        last_ms = now_ms()
        for k, value in enumerate(case.values):
            ts_ms = last_ms - (len(case.values) - 1 - k) * MINUTE_MS
            payload = json.dumps({"ts": ts_ms, "m": {case.metric: value}})
            info = client.publish(f"city/{district}/{device_id}/data", payload, qos=1)
            info.wait_for_publish(10)
            assert info.is_published(), f"{device_id}: no PUBACK (login refused?)"
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


async def test_every_shipped_route_reached_by_devices_added_while_running(
    platform: PlatformProcess,
) -> None:
    routes = load_routing().routes
    assert len(routes) == len(CASES), "a route of the shipped file has no case here"
    async with admin_client(platform) as api:
        created = await api.post("/api/v1/rules", json=CATCH_ALL_RULE)
        assert created.status_code == 201, created.text
        expected: dict[str, str] = {}  # district → team
        published = 0
        for way in ("cli", "api"):
            for n, case in enumerate(CASES):
                district, device_id = f"D{way}{n}", f"{case.type}-{way}-{n}"
                if way == "cli":
                    password = add_by_cli(platform, device_id, case, district)
                else:
                    password = await add_by_api(api, device_id, case, district)
                publish(platform.settings.mqtt.port, device_id, password, district, case)
                published += len(case.values)
                expected[district] = routes[n].team

        async def incidents() -> dict[str, str | None]:
            page = (await api.get("/api/v1/incidents", params={"limit": 100})).json()
            return {d: i["team_id"] for i in page["items"] for d in i["districts"]}

        async def all_routed() -> bool:
            return expected.keys() <= (await incidents()).keys()

        with contextlib.suppress(pytest.fail.Exception):  # the comparison below says what lacks
            await eventually(all_routed, "an incident in every district", 60, interval_s=0.5)
        teams = await incidents()
        assert {d: teams.get(d) for d in expected} == expected

    samples = await platform.metrics()
    assert sample(samples, "urbanwatch_ingest_dead_letters_total") == 0
    assert sample(samples, "urbanwatch_ingest_stored_readings_total") == published
