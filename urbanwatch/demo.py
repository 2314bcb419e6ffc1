"""The demo's wiring: a simulated city imported, then the platform and the simulator run together.

`urbanwatch demo` (`urbanwatch.cli.run`) calls it. It sits beside `platform` rather than in
`cli` because it composes the running system (registry import, platform, simulator process,
drain) and has no command-line concerns; tests reuse `import_city` and `stored_readings`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devices.catalogue import load_catalogue
from devices.clock import now_ms
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from rules.detection import Severity
from simulators.city import build_city
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.demo_logins import DemoLogins, create_demo_logins
from urbanwatch.platform import Platform
from urbanwatch.services.broker_auth import client_url
from urbanwatch.services.port_check import check_ports
from urbanwatch.settings import Settings

log = logging.getLogger(__name__)
DRAIN_TIMEOUT_S = 60.0
STATUS_EVERY_S = 1.0


@dataclass(frozen=True)
class DemoOptions:
    devices: int = 2000
    seed: int = 1
    rate: float = 1000.0
    duration_s: float | None = None  # None: until Ctrl-C


@dataclass(frozen=True)
class DemoStatus:
    """How the running demo is doing, for its one live status line."""

    readings_per_s: float  # stored, over the last interval
    stored: int
    rejected: int
    open_incidents: Mapping[Severity, int]


async def import_city(settings: Settings, n_devices: int, seed: int) -> int:
    """Build the seeded city and upsert its devices and areas into the registry."""
    city = build_city(n_devices, seed, load_catalogue())
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        store = DeviceStore(create_session_factory(engine))
        await store.put_areas(city.geography().areas())
        await store.upsert(city.devices)
    finally:
        await engine.dispose()
    return len(city.devices)


async def run_demo(
    settings: Settings, options: DemoOptions, stop: asyncio.Event,
    announce: Callable[[Platform, DemoLogins], None],
    show: Callable[[DemoStatus], None] | None = None,
) -> dict[str, int]:
    """Run until `stop` (or the duration); returns the end-of-run summary. `announce` is told
    the demo's logins once the platform runs, `show` how it is doing every second."""
    await asyncio.to_thread(check_ports, settings)  # fail before the long city import
    await import_city(settings, options.devices, options.seed)
    async with Platform(settings) as platform:
        assert platform.ingestor is not None and platform.influx is not None
        runner = asyncio.create_task(platform.run(stop))
        await platform.ingestor.wait_ready(timeout_s=30)
        announce(platform, await create_demo_logins(settings, platform.sessions))
        started_ms = now_ms()  # the simulator stamps its readings from now on
        status = None if show is None else asyncio.create_task(_report_status(platform, show))
        simulator = await _start_simulator(platform, options)
        published = await _wait_simulator(simulator, stop)
        if not stop.is_set():
            await _drain(platform, published)
        if status is not None:
            status.cancel()
        stop.set()
        await runner
        counters = platform.ingestor.counters.snapshot()
        stored = await stored_readings(platform.influx, since_ms=started_ms)
        assert platform.alerting is not None
        alerts, incidents = await platform.alerting.counts()
    return {
        "published": published,
        "stored": stored,
        "rejected": _rejected(counters),
        "alerts": alerts,
        "incidents": incidents,
    }


def _rejected(counters: Mapping[str, Any]) -> int:
    """Readings refused: whole messages, single readings, and points InfluxDB refused."""
    return int(counters["rejected_total"] + counters["readings_rejected_total"]
               + counters["points_rejected"])


async def _report_status(platform: Platform, show: Callable[[DemoStatus], None]) -> None:
    """Tell `show` every `STATUS_EVERY_S` how the demo is doing (until cancelled)."""
    assert platform.ingestor is not None and platform.alerting is not None
    counters = platform.ingestor.counters
    last_stored, last_at = counters.stored_readings, time.monotonic()
    while True:
        await asyncio.sleep(STATUS_EVERY_S)
        snapshot, at = counters.snapshot(), time.monotonic()
        stored = int(snapshot["stored_readings"])
        rate = (stored - last_stored) / max(at - last_at, 1e-3)
        last_stored, last_at = stored, at
        try:
            open_incidents = await platform.alerting.open_incidents()
        except Exception:  # the SQL store busy or down: the line goes on without it
            log.debug("counting open incidents for the status line failed", exc_info=True)
            open_incidents = {}
        show(DemoStatus(rate, stored, _rejected(snapshot), open_incidents))


async def stored_readings(influx: InfluxClient, since_ms: int | None = None) -> int:
    """Readings (field values) in the raw retention policy, all measurements (this run's only,
    with ``since_ms``: a demo run again on the same state folder counts what it stored)."""
    return await influx.count_values(since_ms)


async def _start_simulator(platform: Platform, options: DemoOptions) -> asyncio.subprocess.Process:
    """The simulator runs as its own process, talking MQTT like real devices."""
    duration = options.duration_s if options.duration_s is not None else 10 * 365 * 86400
    # as the simulator user; in the environment, where other users cannot read the password
    env = {**os.environ, "URBANWATCH_MQTT__URL": client_url(platform.settings, "simulator")}
    if platform.settings.mqtt.tls_ca is not None:
        env["URBANWATCH_MQTT__TLS_CA"] = str(platform.settings.mqtt.tls_ca)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "urbanwatch", "simulate",
        "--devices", str(options.devices), "--seed", str(options.seed),
        "--rate", str(options.rate), "--duration", str(duration),
        "--topic-prefix", platform.settings.mqtt.topic_prefix,
        "--qos", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )


async def _wait_simulator(simulator: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
    """Readings the simulator had acknowledged by the broker when it ended (or was stopped)."""
    communicate = asyncio.create_task(simulator.communicate())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([communicate, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not communicate.done():
        simulator.terminate()
    stdout, _ = await communicate
    try:
        return int(json.loads(stdout.decode().strip().splitlines()[-1])["published"])
    except (ValueError, IndexError, KeyError):
        return 0


async def _drain(platform: Platform, published: int) -> None:
    """Wait until every published reading is stored or rejected, or nothing moves for 5 s."""
    assert platform.ingestor is not None
    counters = platform.ingestor.counters
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        done = (counters.stored_readings + counters.points_rejected
                + counters.readings_rejected.total())
        if done >= published:
            return
        if done != last:
            last, still_since = done, time.monotonic()
        elif time.monotonic() - still_since > 5:
            return
        await asyncio.sleep(0.2)
