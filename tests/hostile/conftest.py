"""One `urbanwatch serve` process for the suite, run as strangers find it: its own managed
Mosquitto (device logins and ACLs), the session's influxd, a small registered city, a few
users, and every team's incidents sent to a webhook receiver that checks their signatures.

Every test runs beside a steady background stream from one device with its own login
(`steady`, autouse): after the test the stream is stopped, and every reading the broker took
must be stored, exactly once. Whatever a test throws at the platform, ingest goes on.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from alerts.channels.webhook import verify
from devices.catalogue import load_catalogue
from devices.clock import now_ms
from ingest.timeseries.client import InfluxClient
from simulators.city import City, build_city
from tests.support.platform_process import PlatformProcess
from tests.support.polling import eventually
from tests.support.streams import Reading, Stream, as_json, expected_points, stored_points
from urbanwatch.cli.app import app as cli
from urbanwatch.demo import import_city
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.ports import HOST, free_port
from urbanwatch.settings import Settings

N_DEVICES, CITY_SEED = 24, 7
BACKGROUND, GAS, STRANGER = "aq-0001", "gs-0003", "aq-0002"  # devices with MQTT logins
BACKGROUND_RATE = 40.0  # readings per second while a test runs
BACKGROUND_PER_TEST = 4000  # at most; a test stops its stream when it is done
TESTS_PER_SUITE = 24
WEBHOOK_SECRET_ENV = "URBANWATCH_HOSTILE_WEBHOOK_SECRET"
WEBHOOK_SECRET = "whsec-hostile-" + uuid.uuid4().hex
USERS = {"root": "admin", "flood": "viewer", "lockme": "viewer", "changer": "viewer"}


@dataclass
class Webhooks:
    """A receiver that accepts a delivery only if its Standard Webhooks signature holds (id,
    timestamp within the tolerance, body) and its id is new: a replay is refused."""

    url: str
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            if not verify(WEBHOOK_SECRET, body, headers):
                status = 401
            elif headers["webhook-id"] in self._seen:
                status = 409
            else:
                self._seen.add(headers["webhook-id"])
                self.accepted.append((headers, body))
                return 200
            self.refused.append(status)
            return status


@dataclass
class Hostile:
    process: PlatformProcess
    settings: Settings
    city: City
    passwords: dict[str, str]  # user -> password
    logins: dict[str, str]  # device id -> its MQTT password
    webhooks: Webhooks
    admin: dict[str, str]  # an Authorization header of root's
    background: list[Reading]
    _used: int = 0

    @property
    def api_url(self) -> str:
        return self.process.api_url

    @property
    def mqtt_port(self) -> int:
        return self.settings.mqtt.port

    def topic(self, device_id: str, kind: str = "data") -> str:
        district = next(d.district for d in self.city.devices if d.id == device_id)
        return f"{self.settings.mqtt.topic_prefix}city/{district}/{device_id}/{kind}"

    def next_background(self, n: int) -> list[Reading]:
        chunk = self.background[self._used:self._used + n]
        assert len(chunk) == n, "the suite used up its background readings"
        self._used += n
        return chunk

    def cli(self, *args: str, stdin: str | None = None) -> tuple[int, str]:
        """An `urbanwatch` command on this platform's database: (exit code, output)."""
        result = CliRunner().invoke(cli, [*args, "--db-url", self.settings.db_url], input=stdin)
        return result.exit_code, result.output


@pytest.fixture(scope="package")
def webhooks() -> Iterator[Webhooks]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state[0].receive({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    state = [Webhooks(f"http://{HOST}:{server.server_address[1]}/hook")]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="package")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, influxd: Influxd, webhooks: Webhooks,
) -> Iterator[Hostile]:
    folder = tmp_path_factory.mktemp("hostile")  # inside pytest's owner-only (0700) folder
    settings = Settings(
        state_dir=folder / "state",
        mqtt={"port": free_port(), "topic_prefix": f"h{uuid.uuid4().hex[:8]}/",
              "client_id": f"uw-hostile-{uuid.uuid4().hex[:8]}"},  # no URL: its own broker
        influx={"url": influxd.url, "port": influxd.port,
                "database": f"hostile_{uuid.uuid4().hex[:12]}"},
    )
    city = build_city(N_DEVICES, CITY_SEED, load_catalogue())
    asyncio.run(import_city(settings, N_DEVICES, CITY_SEED))
    process = PlatformProcess(settings, folder / "serve.log")
    process.env.update({
        "URBANWATCH_ALERTS__ROUTING_PATH": str(_routing(folder / "routing.yaml", webhooks.url)),
        WEBHOOK_SECRET_ENV: WEBHOOK_SECRET,
        "URBANWATCH_ALERTS__TICK_S": "0.2", "URBANWATCH_RULES__TICK_S": "0.2",
        "URBANWATCH_ALERTS__RETRY_BASE_S": "0.1", "URBANWATCH_API__BODY_TIMEOUT_S": "2",
    })
    passwords = {name: f"pw-{name}-{uuid.uuid4().hex}" for name in USERS}
    hostile = Hostile(process, settings, city, passwords, {}, webhooks, {}, _background())
    for name, role in USERS.items():
        code, output = hostile.cli("users", "add", name, "--role", role, "--password-stdin",
                                   stdin=passwords[name] + "\n")
        assert code == 0, output
    process.start()
    try:
        asyncio.run(process.wait_ready())
        with httpx.Client(base_url=process.api_url, timeout=30) as api:
            hostile.admin = _bearer(api, "root", passwords["root"])
            for device_id in (BACKGROUND, GAS, STRANGER):
                issued = api.post(f"/api/v1/devices/{device_id}/credentials", headers=hostile.admin)
                assert issued.status_code == 200, issued.text
                hostile.logins[device_id] = issued.json()["password"]
        yield hostile
    finally:
        code = process.stop()
        asyncio.run(_drop(settings))
    assert code == 0, f"urbanwatch serve did not stop cleanly ({code}):\n{process.log_tail()}"


@pytest.fixture(autouse=True)
async def steady(hostile: Hostile) -> AsyncIterator[None]:
    """A device's readings at a steady pace for the whole test; all stored afterwards."""
    chunk = hostile.next_background(BACKGROUND_PER_TEST)
    stream = Stream(HOST, hostile.mqtt_port, hostile.settings.mqtt.topic_prefix,
                    [as_json(hostile.city, r) for r in chunk], rate=BACKGROUND_RATE,
                    client_id=f"bg-{uuid.uuid4().hex[:8]}",
                    login=(BACKGROUND, hostile.logins[BACKGROUND])).start()
    try:
        await eventually(lambda: stream.acked > 0, "the background stream flowing")
        yield
        await eventually(lambda: stream.acked > 0, "the background stream still flowing")
        stream.stop()
        await eventually(lambda: stream.done, "the broker took every background reading")
    finally:
        stream.close()
    sent = expected_points(chunk[:stream.sent])
    first, last = min(ts for _, ts in sent), max(ts for _, ts in sent)
    s = hostile.settings
    async with InfluxClient(s.influx.url or "", s.influx.database) as influx:

        async def all_stored_once() -> bool:
            found = await stored_points(influx, ["air_quality"])  # asserts: none stored twice
            return {p: v for p, v in found.items()
                    if p[0] == BACKGROUND and first <= p[1] <= last} == sent

        await eventually(all_stored_once, "every background reading stored")
    assert hostile.process.running()


def _routing(path: Path, url: str) -> Path:
    """The shipped routing with every team's incidents also sent to `url`, signed."""
    config = yaml.safe_load(resources.files("alerts").joinpath("data/routing.yaml").read_text())
    for handler in config["handlers"]:
        for team in handler["teams"]:
            team["channels"] = [{"type": "webhook", "url": url, "allow_http": True,
                                 "secret_env": WEBHOOK_SECRET_ENV}]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _background() -> list[Reading]:
    """Plausible PM2.5 readings of the background device, 100 ms apart, ending an hour ago
    (enough for `TESTS_PER_SUITE` tests)."""
    n = TESTS_PER_SUITE * BACKGROUND_PER_TEST
    t0_ms = now_ms() - 3_600_000 - n * 100
    return [Reading(BACKGROUND, "pm25", t0_ms + i * 100, 20.0 + (i % 200) / 10) for i in range(n)]


def _bearer(api: httpx.Client, user: str, password: str) -> dict[str, str]:
    response = api.post("/api/v1/auth/token", data={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _drop(settings: Settings) -> None:
    async with InfluxClient(settings.influx.url or "", settings.influx.database) as influx:
        await influx.drop_database()


