"""`urbanwatch demo` and `urbanwatch serve` as a user runs them, stopped by a signal."""

from __future__ import annotations

import os
import re
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
from tests.support.platform_process import parse_metrics, sample
from tests.support.polling import eventually
from urbanwatch.demo_logins import demo_team
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port, port_open
from urbanwatch.settings import load_settings


async def test_ctrl_c_stops_the_demo_and_its_services(tmp_path: Path) -> None:
    """Ctrl-C reaches the demo and its simulator (one process group): the summary counts what
    was published, and the pages' logins printed at the start let their people in."""
    ports = {name: free_port() for name in ("MQTT", "INFLUX", "API")}
    env = {**os.environ, **{f"URBANWATCH_{k}__PORT": str(v) for k, v in ports.items()},
           "URBANWATCH_API__SECRET_KEY": SECRET}
    api_url = f"http://127.0.0.1:{ports['API']}"
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "urbanwatch", "demo", "--devices", "100", "--rate", "500",
             "--state-dir", str(tmp_path / "state")],
            env=env, stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True,
        )
    try:
        devices = await _wait_for_devices(api_url, demo)
        logins: dict[str, dict[str, str]] = {}

        def printed() -> bool:
            logins.update(_printed_logins(log_path))
            return len(logins) == 3

        await eventually(printed, "the pages and their logins printed")
        whoami = {page: await _who(api_url, login) for page, login in logins.items()}
        await _wait_for_stored(api_url)
        os.killpg(demo.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    stderr = log_path.read_text()
    assert devices == 100
    assert demo.returncode == 0, stderr[-2000:]
    assert f"{api_url}/api/v1/devices" in stderr  # the API's URLs were printed
    assert whoami == {
        "dashboard": {"subject": "demo-operator", "role": "operator", "teams": [], "kind": "user"},
        "field page": {"subject": "demo-responder", "role": "responder",
                       "teams": [demo_team(load_settings(None))], "kind": "user"},
        "wall screen": {"subject": whoami["wall screen"]["subject"], "role": "viewer",
                        "teams": [], "kind": "api_key"},
    }
    summary = re.search(r"published (\d+), stored (\d+), rejected (\d+)", stderr)
    assert summary is not None, stderr[-2000:]
    published, stored, rejected = (int(n) for n in summary.groups())
    assert 0 < stored <= published  # what the broker took but was not yet stored stays there
    assert rejected == 0
    assert "readings/s" in stderr  # the status line (printed once at the end off a terminal)
    assert not port_open(ports["MQTT"]) and not port_open(ports["INFLUX"])


PAGE_LINE = re.compile(
    r"^  (dashboard|field page|wall screen) +(\S+)(?:   log in as (\S+) / (\S+))?", re.M
)


def _printed_logins(log_path: Path) -> dict[str, dict[str, str]]:
    """The demo's pages, each with its login: a user and password, or the wall's key."""
    found: dict[str, dict[str, str]] = {}
    for page, url, user, password in PAGE_LINE.findall(log_path.read_text()):
        if page == "wall screen":
            found[page] = {"key": url.partition("#key=")[2]}
        else:
            found[page] = {"username": user, "password": password}
    return found


async def _who(api_url: str, login: dict[str, str]) -> dict[str, object]:
    """`/auth/me` for a login: a password logs in first, a key is sent as it is."""
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as api:
        if "key" in login:
            headers = {"X-API-Key": login["key"]}
        else:
            token = (await api.post("/api/v1/auth/token", data=login)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
        me = await api.get("/api/v1/auth/me", headers=headers)
    me.raise_for_status()
    return dict(me.json())


async def _wait_for_stored(api_url: str) -> None:
    """Until the platform says it has stored readings (its Prometheus counter)."""
    async def stored() -> bool:
        async with httpx.AsyncClient(base_url=api_url, timeout=5) as api:
            text = (await api.get("/metrics")).text
        return sample(parse_metrics(text), "urbanwatch_ingest_stored_readings_total") > 0

    await eventually(stored, "readings stored", timeout_s=60, interval_s=0.3)


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
