"""`urbanwatch demo` and `urbanwatch serve` as a user runs them, stopped by a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from api.security.principal import Role
from ingest.timeseries.client import InfluxClient
from tests.support.auth import SECRET, bearer
from tests.support.polling import eventually
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port, port_open


async def test_ctrl_c_stops_the_demo_and_its_services(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("MQTT", "INFLUX", "API")}
    env = {**os.environ, **{f"URBANWATCH_{k}__PORT": str(v) for k, v in ports.items()},
           "URBANWATCH_API__SECRET_KEY": SECRET}
    demo = subprocess.Popen(
        [sys.executable, "-m", "urbanwatch", "demo", "--devices", "100", "--rate", "500",
         "--state-dir", str(tmp_path / "state")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        devices = await _wait_for_devices(f"http://127.0.0.1:{ports['API']}", demo)
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert devices == 100
    assert demo.returncode == 0, stderr[-2000:]
    assert f"http://127.0.0.1:{ports['API']}" in stderr  # the URLs were printed
    assert "published" in stderr
    assert not port_open(ports["MQTT"]) and not port_open(ports["INFLUX"])


def test_a_json_demo_still_says_why_it_could_not_start(tmp_path: Path) -> None:
    """`--json` keeps stdout for the summary; the reason for a failure goes to stderr."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "URBANWATCH_MQTT__PORT": str(taken.getsockname()[1]),
               "URBANWATCH_INFLUX__PORT": str(free_port()), "URBANWATCH_API__SECRET_KEY": SECRET}
        done = subprocess.run(
            [sys.executable, "-m", "urbanwatch", "demo", "--json", "--duration", "5",
             "--devices", "10", "--state-dir", str(tmp_path / "state")],
            env=env, capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "already in use" in done.stderr


async def _wait_for_devices(api_url: str, process: subprocess.Popen[str]) -> int:
    """The device count the API reports once it is ready (the process must not exit first)."""
    found: list[int] = []

    async def ready() -> bool:
        assert process.poll() is None, process.communicate()[1][-2000:]
        try:
            async with httpx.AsyncClient(base_url=api_url, timeout=2) as api:
                response = await api.get("/api/v1/devices", params={"limit": 1},
                                         headers=bearer(Role.viewer))
                if response.status_code == 200 and (await api.get("/readyz")).status_code == 200:
                    found.append(int(response.json()["total"]))
        except httpx.HTTPError:
            pass
        return bool(found)

    await eventually(ready, "the API to become ready", timeout_s=60, interval_s=0.3)
    return found[0]


async def test_serve_uses_the_given_services_and_creates_the_schema(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd
) -> None:
    database = f"serve_{uuid.uuid4().hex[:10]}"
    api_port = free_port()
    env = {**os.environ, "URBANWATCH_INFLUX__DATABASE": database,
           "URBANWATCH_API__SECRET_KEY": SECRET}
    login = "uw:never-shown-9f2c"  # the test broker lets anyone in; the password is only shown
    mqtt_url = mosquitto.url.replace("mqtt://", f"mqtt://{login}@")
    serve = subprocess.Popen(
        [sys.executable, "-m", "urbanwatch", "serve", "--mqtt-url", mqtt_url,
         "--influx-url", influxd.url, "--db-url", f"sqlite+aiosqlite:///{tmp_path / 'uw.db'}",
         "--state-dir", str(tmp_path / "state"), "--api-port", str(api_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert await _wait_for_devices(f"http://127.0.0.1:{api_port}", serve) == 0
        serve.send_signal(signal.SIGTERM)
        stdout, stderr = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
    assert serve.returncode == 0, stderr[-2000:]
    assert "MQTT mqtt://uw:***@" in stderr  # the banner, with the password masked
    assert "never-shown-9f2c" not in stdout + stderr
    assert not (tmp_path / "state" / "services").exists()  # nothing managed was started
    async with InfluxClient(influxd.url, database) as influx:
        policies = await influx.query("SHOW RETENTION POLICIES")
        queries = await influx.query("SHOW CONTINUOUS QUERIES")
        await influx.drop_database()
    assert {row[0] for s in policies for row in s["values"]} >= {"raw", "downsampled"}
    assert any(s["name"] == database and s.get("values") for s in queries)
