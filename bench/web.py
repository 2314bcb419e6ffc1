"""The web pages at city scale (`python -m bench web`): how long from login to a usable
dashboard, and how long from an MQTT publish to the new incident on an open dashboard.

The city has 10,000 devices (the seeded synthetic city, with its districts and grid cells) and
200 active incidents, raised through the real `AlertService` before the platform starts (each
opened more than the grouping window after the last, the alert before it in its area and
category cleared, so none joins another). The platform runs as `urbanwatch serve` in its own
process with its own Mosquitto and influxd; the dashboard is the real page in the OS
package's headless Chromium (Python Playwright).

- login to usable: from the login form's submit to the map holding every device, the counters
  saying 200 active incidents and the feed listing them (a fresh browser context each run).
- live update: a gas detector of the city (published for by the simulator's broker login, as
  `urbanwatch demo` does) reads 70 % LEL; from just before the publish to the moment the page
  first shows a feed item holding that device (a MutationObserver stamps it; both clocks are
  this machine's). Each sample's incident is then resolved through the API, so the next
  detector in the same district opens an incident of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.routing import load_routing
from alerts.service import AlertService
from api.security.principal import Role
from api.security.users import UserStore
from devices.catalogue import load_catalogue
from devices.registry import Device
from rules.detection import Category, Detection, DetectionState, Severity
from simulators.city import build_city
from simulators.payloads import topic
from urbanwatch.database import create_engine, create_session_factory
from urbanwatch.demo import import_city
from urbanwatch.services.broker_auth import client_url
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings, load_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [  # what these machines need (see the stack notes): as tests/web/conftest.py
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
USER, PASSWORD = "bench-operator", "a long benchmark passphrase"
GROUPING_GAP_MS = 31 * 60_000  # more than the grouping window: every incident is its own
WAIT_MS = 120_000
# the incidents the city starts with: (device type, rule, category, metric, value, severity)
SEEDS = [
    ("gas", "gas-lel", Category.SAFETY, "lel_pct", 35.0, Severity.ORANGE),
    ("air_quality", "aq-pm25", Category.ENVIRONMENT, "pm25", 160.0, Severity.ORANGE),
    ("water_level", "water-level", Category.FLOOD, "level_m", 4.0, Severity.YELLOW),
    ("smoke", "fire-smoke", Category.FIRE, "obscuration_pct_m", 12.0, Severity.RED),
    ("traffic_flow", "traffic-congestion", Category.TRAFFIC, "speed_kmh", 8.0, Severity.YELLOW),
]
USABLE = """([devices, incidents]) =>
  document.querySelector('#map')?.dataset.devices === String(devices)
  && Number(document.querySelector('#severity-counters [data-severity=total] .counter-n')
       ?.textContent) >= incidents
  && document.querySelectorAll('#feed [data-incident]').length > 0"""
STAMP_NEW_ITEMS = """() => {
  window.firstSeen = {};
  const stamp = () => {
    for (const item of document.querySelectorAll('#feed [data-incident]')) {
      for (const id of (item.dataset.devices || '').split(' ')) {
        if (id && !(id in window.firstSeen)) window.firstSeen[id] = Date.now();
      }
    }
  };
  stamp();
  new MutationObserver(stamp).observe(document.body, {childList: true, subtree: true,
                                                      attributes: true});
}"""


@dataclass(frozen=True)
class WebBenchOptions:
    devices: int = 10_000
    incidents: int = 200
    logins: int = 5
    samples: int = 20
    seed: int = 1


Report = Callable[[str], None]


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "median": round(statistics.median(values), 3),
            "p95": round(p95, 3), "max": round(ordered[-1], 3),
            "values": [round(v, 3) for v in values]}


async def run(work: Path, options: WebBenchOptions, report: Report) -> dict[str, Any]:
    settings = load_settings(
        None, state_dir=work, mqtt={"port": free_port()}, influx={"port": free_port()},
        api={"port": free_port()},
    )
    report(f"importing a city of {options.devices:,} devices")
    await import_city(settings, options.devices, options.seed)
    city = build_city(options.devices, options.seed, load_catalogue())
    spare = await _seed_incidents(settings, city.devices, options.incidents, report)
    serve = _start_platform(settings, work)
    try:
        api_url = f"http://127.0.0.1:{settings.api.port}"
        await _wait_ready(api_url, serve)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                logins = [await _login_to_usable(browser, api_url, options, report, n)
                          for n in range(options.logins)]
                delays = (await _live_delays(browser, api_url, settings, spare, options, report)
                          if options.samples else [])
            finally:
                await browser.close()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    return {
        "devices": options.devices, "active_incidents": options.incidents,
        "login_to_usable_s": summary(logins), "live_update_s": summary(delays),
    }


async def _seed_incidents(settings: Settings, devices: tuple[Device, ...], count: int,
                          report: Report) -> list[Device]:
    """`count` incidents through the real alert service, each on its own; the gas detectors
    left over (for the live samples)."""
    report(f"raising {count} incidents")
    engine = create_engine(settings.db_url)
    try:
        sessions = create_session_factory(engine)
        await UserStore(sessions).add(USER, Role.operator, [], PASSWORD, _now_ms())
        by_type: dict[str, list[Device]] = {}
        for device in devices:
            by_type.setdefault(device.type, []).append(device)
        service = _alert_service(sessions, devices)
        start_ms = _now_ms() - count * GROUPING_GAP_MS
        firing: dict[tuple[Category, str], Detection] = {}  # the last raised per area + category
        for n in range(count):
            kind, rule, category, metric, value, severity = SEEDS[n % len(SEEDS)]
            device = by_type[kind].pop()
            ts_ms = start_ms + n * GROUPING_GAP_MS
            detection = Detection(rule, category, device.id, DetectionState.FIRING, severity,
                                  ts_ms, value, device.id, metric, device.district, device.grid)
            # an incident whose alert still fires takes in its area's new alerts of its
            # category: the one before in this area clears first (its incident stays active)
            before = firing.pop((category, device.district), None)
            if before is not None:
                await service.handle([replace(before, state=DetectionState.CLEARED,
                                              ts_ms=ts_ms - 1)], ts_ms - 1)
            await service.handle([detection], ts_ms)
            firing[(category, device.district)] = detection
        return by_type["gas"]
    finally:
        await engine.dispose()


def _alert_service(sessions: async_sessionmaker[AsyncSession],
                   devices: tuple[Device, ...]) -> AlertService:
    located = {d.id: d for d in devices}
    return AlertService(
        sessions, load_routing(), device_types={d.id: d.type for d in devices},
        locate=lambda i: (located[i].lat, located[i].lon) if i in located else None,
        hub=LiveHub(),
    )


def _start_platform(settings: Settings, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "URBANWATCH_MQTT__PORT": str(settings.mqtt.port),
           "URBANWATCH_INFLUX__PORT": str(settings.influx.port)}
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("urbanwatch")), "serve", "--state-dir", str(work),
         "--api-port", str(settings.api.port)],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )


async def _wait_ready(api_url: str, serve: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=5) as api:
        for _ in range(600):
            if serve.poll() is not None:
                raise RuntimeError("urbanwatch serve exited; see serve.log in the work folder")
            try:
                if (await api.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("urbanwatch serve did not become ready in 120 s")


async def _login_form(browser: Browser, api_url: str) -> Page:
    """The login page in a fresh browser context, filled in (the next step is submit)."""
    context = await browser.new_context(base_url=api_url, viewport={"width": 1600, "height": 900})
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#username", USER)
    await page.fill("#password", PASSWORD)
    return page


async def _login_to_usable(browser: Browser, api_url: str, options: WebBenchOptions,
                           report: Report, n: int) -> float:
    report(f"login to usable, run {n + 1} of {options.logins}")
    page = await _login_form(browser, api_url)
    try:
        started = time.perf_counter()
        await page.click("button[type=submit]")
        await _until_usable(page, options)
        return time.perf_counter() - started
    finally:
        await page.context.close()


async def _live_delays(browser: Browser, api_url: str, settings: Settings, spare: list[Device],
                       options: WebBenchOptions, report: Report) -> list[float]:
    page = await _login_form(browser, api_url)
    await page.click("button[type=submit]")
    await _until_usable(page, options)
    await page.wait_for_function(
        "() => document.querySelector('#live-status')?.dataset.state === 'live'")
    await page.evaluate(STAMP_NEW_ITEMS)
    publisher = _publisher(settings)
    delays = []
    try:
        async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
            token = (await api.post("/api/v1/auth/token",
                                    data={"username": USER, "password": PASSWORD})).json()
            api.headers["Authorization"] = f"Bearer {token['access_token']}"
            for n in range(options.samples):
                report(f"live update, sample {n + 1} of {options.samples}")
                device = spare[n]
                sent_ms = time.time() * 1000
                _publish(publisher, settings, device, 70.0)
                try:
                    seen_ms = await page.wait_for_function(
                        "(id) => window.firstSeen[id]", arg=device.id, timeout=WAIT_MS)
                except PlaywrightTimeout as exc:
                    alerts = (await api.get("/api/v1/alerts", params={"device_id": device.id})
                              ).json()["items"]
                    raise RuntimeError(f"{device.id} never showed on the page; its alerts: "
                                       f"{alerts}") from exc
                delays.append((await seen_ms.json_value() - sent_ms) / 1000)
                await _resolve_incident_of(api, device)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        await page.context.close()
    return delays


async def _until_usable(page: Page, options: WebBenchOptions) -> None:
    try:
        await page.wait_for_function(USABLE, arg=[options.devices, options.incidents],
                                     timeout=WAIT_MS, polling="raf")
    except PlaywrightTimeout as exc:
        shown = await page.evaluate("""() => [location.href, document.querySelector('#map')
          ?.dataset.devices, document.querySelector('#severity-counters [data-severity=total]')
          ?.textContent, document.querySelectorAll('#feed [data-incident]').length]""")
        raise RuntimeError(f"the dashboard did not become usable; it shows {shown}") from exc


def _publisher(settings: Settings) -> mqtt.Client:
    """An MQTT client with the simulator's login (it may publish for every device)."""
    url = httpx.URL(client_url(settings, "simulator"))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-web")
    client.username_pw_set(url.username, url.password)
    client.connect(url.host, url.port or settings.mqtt.port)
    client.loop_start()
    return client


def _publish(client: mqtt.Client, settings: Settings, device: Device, value: float) -> None:
    payload = json.dumps({"m": {"lel_pct": value}})  # stamped on receipt
    info = client.publish(topic(settings.mqtt.topic_prefix, device.district, device.id), payload,
                          qos=1)
    info.wait_for_publish(10)
    if not info.is_published():
        raise RuntimeError(f"the broker did not take the reading of {device.id}")


async def _resolve_incident_of(api: httpx.AsyncClient, device: Device) -> None:
    """Resolve the incident holding `device`: the next detector in its district opens another."""
    page = (await api.get("/api/v1/incidents", params={"state": "dispatched",
                                                       "limit": 1000})).json()
    for incident in page["items"]:
        if device.id in incident["devices"]:
            path = f"/api/v1/incidents/{incident['id']}"
            (await api.post(f"{path}/acknowledge")).raise_for_status()
            (await api.post(f"{path}/transition", json={"to": "resolved"})).raise_for_status()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
