"""The pages in a real browser: Python Playwright driving the OS package's Chromium (installed by
`make install`, never downloaded) against one real `urbanwatch serve` per test module.

Everything here is module-scoped and lives on the module's event loop, so a test module says
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.

- `web`: the platform process (its own Mosquitto with device logins, the session's influxd, SQLite)
  with a small city and its districts and grid cells, users of each role (`USERS`, password
  `PASSWORD`); `await web.add_user(...)` adds more (responders with their teams),
  `await web.provision(type)` a device with its MQTT login, `web.client(name)` an API client.
- `browser`: headless Chromium.
- `pages` (per test): `await pages.open(viewport=...)` gives a page in a context of its own
  (its own login); when the test ends, every page must have requested nothing but 127.0.0.1.

Helpers: `log_in(page, name)`, `publish(web, login, metric, values)`, `screenshot(page, name)`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import paho.mqtt.client as mqtt
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from api.security.principal import Role
from api.security.users import UserStore
from devices.clock import now_ms
from ingest.timeseries.client import InfluxClient
from tests.support.platform_process import PlatformProcess, serving
from urbanwatch.database import create_engine, create_session_factory
from urbanwatch.demo import import_city
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [  # what this machine needs (no GPU, no sandbox as root, no network beyond)
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
N_DEVICES, CITY_SEED = 60, 7
PASSWORD = "a long web passphrase"
USERS = {  # name -> (role, teams)
    "admin1": ("admin", ()),
    "ops1": ("operator", ()),
    "ops2": ("operator", ()),
    "viewer1": ("viewer", ()),
}
LOCAL_HOSTS = {"127.0.0.1"}
expect.set_options(timeout=30_000)  # a wait, not a time limit: this machine may be loaded


@dataclass(frozen=True)
class DeviceLogin:
    device_id: str
    district: str
    password: str


@dataclass
class Web:
    process: PlatformProcess
    users: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    used_districts: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return self.process.api_url

    @property
    def mqtt_port(self) -> int:
        return self.process.settings.mqtt.port

    async def add_user(self, name: str, role: str, *teams: str) -> None:
        """A user with `PASSWORD`, added by the store `urbanwatch users add` calls."""
        engine = create_engine(self.process.settings.db_url)
        try:
            users = UserStore(create_session_factory(engine))
            await users.add(name, Role(role), teams, PASSWORD, now_ms())
        finally:
            await engine.dispose()
        self.users[name] = (role, teams)

    @contextlib.asynccontextmanager
    async def client(self, name: str) -> AsyncIterator[httpx.AsyncClient]:
        """An API client logged in as user `name`."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0) as api:
            login = await api.post("/api/v1/auth/token",
                                   data={"username": name, "password": PASSWORD})
            assert login.status_code == 200, login.text
            api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            yield api

    async def provision(self, device_type: str) -> DeviceLogin:
        """A new device of `device_type` with its MQTT login, in a district no device
        provisioned here is in yet (so its incidents are not grouped with earlier ones)."""
        async with self.client("admin1") as api:
            areas = await api.get("/api/v1/areas", params={"kind": "district"})
            free = [a for a in areas.json()["features"]
                    if a["properties"]["id"] not in self.used_districts]
            assert free, "every district has a provisioned device: build a larger city"
            district = free[0]["properties"]["id"]
            ring = free[0]["geometry"]["coordinates"][0]  # the city's districts are rectangles
            lon, lat = (min(p[k] for p in ring) * 0.6 + max(p[k] for p in ring) * 0.4
                        for k in (0, 1))  # inside, off the grid cells' corners
            device_id = f"{device_type}-web-{uuid.uuid4().hex[:6]}"
            body = {"id": device_id, "type": device_type, "district": district,
                    "lat": lat, "lon": lon}
            created = await api.post("/api/v1/devices", json=body)
        assert created.status_code == 201, created.text
        self.used_districts.add(district)
        return DeviceLogin(device_id, district, created.json()["mqtt"]["password"])


def publish(web: Web, device: DeviceLogin, metric: str, values: list[float]) -> None:
    """Readings of `metric` as the device itself (QoS 1, each acknowledged), one a second,
    the last one now."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device.device_id)
    client.username_pw_set(device.device_id, device.password)
    client.connect("127.0.0.1", web.mqtt_port)
    client.loop_start()
    try:
        last_ms = now_ms()
        for k, value in enumerate(values):
            payload = json.dumps({"ts": last_ms - (len(values) - 1 - k) * 1000,
                                  "m": {metric: value}})
            info = client.publish(f"city/{device.district}/{device.device_id}/data", payload,
                                  qos=1)
            info.wait_for_publish(10)
            assert info.is_published(), f"{device.device_id}: no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> AsyncIterator[Web]:
    folder = tmp_path_factory.mktemp("web")
    database = f"test_web_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        state_dir=folder / "state",
        mqtt={"port": free_port(), "client_id": f"uw-web-{uuid.uuid4().hex[:8]}"},
        influx={"url": influxd.url, "port": influxd.port, "database": database},
    )
    await import_city(settings, N_DEVICES, CITY_SEED)
    async with serving(PlatformProcess(settings, folder / "serve.log")) as process:
        site = Web(process)
        for name, (role, teams) in USERS.items():
            await site.add_user(name, role, *teams)
        yield site
    influx = InfluxClient(influxd.url, database)
    await influx.drop_database()
    await influx.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make install` (apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True)
        yield chromium
        await chromium.close()


class Pages:
    """Pages in fresh browser contexts, each remembering what it requested off this machine."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser, self.base_url = browser, base_url
        self.external: list[str] = []  # URLs requested off this machine
        self.errors: list[str] = []  # uncaught script errors and refusals of the pages' CSP
        self._contexts: list[BrowserContext] = []

    async def open(self, viewport: ViewportSize | None = None, locale: str = "en-US") -> Page:
        context = await self.browser.new_context(
            base_url=self.base_url, viewport=viewport or {"width": 1400, "height": 900},
            locale=locale, timezone_id="UTC",  # the pages must show the city's zone anyway
        )
        self._contexts.append(context)
        page = await context.new_page()
        page.on("request", lambda request: self._check(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.errors.append(message.text)
                if "Content Security Policy" in message.text else None)
        return page

    def _check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("data", "blob") and parts.hostname not in LOCAL_HOSTS:
            self.external.append(url)

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def pages(browser: Browser, web: Web) -> AsyncIterator[Pages]:
    opened = Pages(browser, web.url)
    try:
        yield opened
    finally:
        await opened.close()
    assert opened.external == [], f"requests off this machine: {opened.external}"
    assert opened.errors == [], f"script errors on the pages: {opened.errors}"


async def log_in(page: Page, name: str, path: str = "/") -> None:
    """Log in on the login page as `name` and land on `path`."""
    await page.goto(f"/login?next={quote(path)}")
    await page.fill("#username", name)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**{path}")


# A zoom animation scales the map's layers until it ends.
MAP_SETTLED = """() => [...document.querySelectorAll('.leaflet-pane > canvas, .leaflet-pane > svg')]
  .every((layer) => !layer.style.transform.includes('scale('))"""


async def screenshot(page: Page, name: str) -> Path:
    """The page as docs/screenshots/<name>.png (the README shows the current ones), once a map
    on it has ended its zoom."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.wait_for_function(MAP_SETTLED)
    await page.screenshot(path=str(path))
    return path
