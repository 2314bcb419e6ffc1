"""`bench e2e`: the whole platform under a city's load (ThingsBoard's 1M-device benchmark rate).

The platform is `urbanwatch serve` in its own process (ingest, the rule engine with the default
pack, alerts, dispatch, the live stream, the API) against the benchmark's own Mosquitto and
influxd, with its devices in SQLite. A city of `devices` devices is provisioned in bulk first
(`urbanwatch.demo.import_city`: every device and area, as `urbanwatch city` + import would).
The load is the city's messages (each device's metrics in one compact JSON message, as
`urbanwatch simulate` sends them), generated first and sent at QoS 1 at the offered rate by the
C publisher in its own process, stamped as they are sent.

While it runs:
- every second: readings offered (by the publisher's progress, every 0.2 s) and stored (the
  platform's ``urbanwatch_ingest_stored_readings``), the platform's RSS; the backlog
  is offered minus stored, in readings, at the end of the warm-up and at the end of the run;
- every `inject_every_s`: a reading of a gas detector far above the `gas-lel` threshold is
  published (its own MQTT connection) and the time until that detector's `gas-lel` alert
  arrives on ``/api/v1/live/sse`` is its latency;
- a steady trickle of dashboard requests (devices, alerts, incidents, a device's latest
  values), whose latencies give the API's p99, overall and for each request.

The rate is held when the backlog stayed flat (it grew by less than `FLAT_BACKLOG_S` seconds of
the offered load over the run) and the stored rate is at least `HELD_FRACTION` of the offered.
When it is not, shorter runs search for the highest rate that is held (at most `search_steps`),
each once the platform has stored everything the broker took in the run before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from api.security.principal import Role
from api.security.users import UserStore
from bench.proc import CpuMeter, per_1000, rss_bytes, stop
from devices.clock import now_ms
from simulators import c_publisher
from simulators.city import City, build_city
from urbanwatch.database import create_engine, create_session_factory
from urbanwatch.demo import import_city
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

FLAT_BACKLOG_S = 2.0  # held: the backlog grew by less than this many seconds of offered load
HELD_FRACTION = 0.97
INJECTED_LEL = 60.0  # % LEL: far above the pack's gas-lel threshold (20)
RECONNECT_S = 0.5  # before the live stream is opened again
READY_TIMEOUT_S = 600.0
API_TIMEOUT_S = 30.0  # a dashboard request not answered by then counts as failed
OWN_TIMEOUT_S = 120.0  # the benchmark's own requests (login, /metrics) wait out a busy platform
DATABASE = "bench_e2e"
SETTLED_S = 15.0  # nothing stored for this long: the broker holds nothing more for it
DRAIN_TIMEOUT_S = 180.0  # a search step starts only once the previous backlog is stored
USER, PASSWORD = "bench-e2e", secrets.token_urlsafe(16)
DASHBOARD_PATHS = ("/api/v1/devices?limit=50", "/api/v1/alerts?limit=50",
                   "/api/v1/incidents?limit=50", "/api/v1/devices/{device}/latest")
Report = Callable[[str], None]


@dataclass(frozen=True)
class E2eOptions:
    devices: int = 100_000
    readings_per_s: float = 33_333.0
    duration_s: float = 60.0
    warmup_s: float = 10.0
    search_steps: int = 3
    search_duration_s: float = 30.0
    inject_every_s: float = 1.0
    api_every_s: float = 0.2
    seed: int = 1


@dataclass(frozen=True)
class Services:
    mqtt_host: str
    mqtt_port: int
    influx_url: str
    broker_pid: int | None = None
    influxd_pid: int | None = None  # for benchmarks that meter influxd's CPU too


def run(services: Services, work: Path, options: E2eOptions,
        report: Report | None = None) -> dict[str, Any]:
    return asyncio.run(_run(services, work, options, report or (lambda stage: None)))


async def _run(services: Services, work: Path, options: E2eOptions,
               say: Report) -> dict[str, Any]:
    state = work / "state"
    db_url = f"sqlite+aiosqlite:///{state / 'urbanwatch.db'}"
    settings = Settings(state_dir=state, db={"url": db_url})
    say(f"provisioning {options.devices:,} devices")
    started = time.perf_counter()
    await import_city(settings, options.devices, options.seed)
    provision_s = time.perf_counter() - started
    await _add_user(db_url)
    city = build_city(options.devices, options.seed)
    say("generating the city's messages")
    per_message = float(np.mean([len(city.catalogue[d.type].metrics) for d in city.devices]))
    messages = work / "city.txt"
    readings = c_publisher.write_city_messages(
        messages, city, min(3 * len(city.devices), 300_000),
        options.readings_per_s / per_message)
    load = _Load(c_publisher.build(work), services, messages,
                 c_publisher.readings_cycle(readings), per_message)
    say("starting the platform")
    async with _platform(services, state, db_url, work / "platform.log") as platform:
        runs = [await _measure(platform, load, city, options, options.readings_per_s,
                               options.duration_s, say)]
        held = runs[0] if runs[0]["held"] else None
        failed = None if held else runs[0]
        for _ in range(options.search_steps if held is None else 0):
            assert failed is not None
            candidate = (0.9 * failed["sustained_readings_per_s"] if held is None
                         else (held["offered_readings_per_s"]
                               + failed["offered_readings_per_s"]) / 2)
            if not await _drain(platform, runs[-1]["drain_target"]):
                runs.append({"offered_readings_per_s": round(candidate), "error": (
                    f"the previous run's backlog not worked off in {DRAIN_TIMEOUT_S:g} s")})
                break
            try:
                tried = await _measure(platform, load, city, options, candidate,
                                       options.search_duration_s, say)
            except (httpx.HTTPError, OSError) as exc:  # keep what was measured so far
                runs.append({"offered_readings_per_s": round(candidate), "error": repr(exc)})
                break
            runs.append(tried)
            if tried["held"]:
                held = tried
            else:
                failed = tried
    main = runs[0]
    return {
        **{k: main[k] for k in ("offered_readings_per_s", "sustained_readings_per_s",
                                "backlog_start", "backlog_end", "alert_latency_ms",
                                "api_p99_ms", "rss_mb")},
        "held": main["held"],
        "highest_held_readings_per_s": held["offered_readings_per_s"] if held else None,
        "devices": options.devices,
        "readings_per_message": round(per_message, 3),
        "provision_s": round(provision_s, 1),
        "runs": runs,
    }


@dataclass
class _Load:
    binary: Path
    services: Services
    messages: Path
    readings_in: Callable[[int], int]  # readings in the first n messages sent
    per_message: float


@dataclass
class _Platform:
    proc: subprocess.Popen[bytes]
    api: httpx.AsyncClient
    token: str
    alerts: dict[str, float] = field(default_factory=dict)  # subject -> first gas-lel alert
    injected: int = 0  # gas detectors used so far (each only once in a benchmark)
    reconnects: int = 0  # of the live stream


async def _measure(platform: _Platform, load: _Load, city: City, options: E2eOptions,
                   readings_per_s: float, duration_s: float, say: Report) -> dict[str, Any]:
    """One run at `readings_per_s`: warm-up, then `duration_s` measured."""
    messages_per_s = readings_per_s / load.per_message
    total_s = options.warmup_s + duration_s
    stored_before = await _stored(platform)  # the backlog is this run's: offered - stored
    proc = c_publisher.publish(load.binary, load.services.mqtt_host, load.services.mqtt_port,
                               load.messages, 1000, qos=1, rate=messages_per_s, stamped=True,
                               count=round(messages_per_s * (total_s + 5)))
    published, acked = [0], [0]
    reader = threading.Thread(target=_follow, args=(proc, published, acked), daemon=True)
    reader.start()
    gas = [d for d in city.devices if d.type == "gas"]
    injected: dict[str, float] = {}
    reconnects_before = platform.reconnects
    api_ms: dict[str, list[float]] = {path: [] for path in DASHBOARD_PATHS}
    api_failures: list[str] = []
    rss: list[int] = []
    pids = {"platform": platform.proc.pid, "broker": load.services.broker_pid}
    cpu = CpuMeter({name: pid for name, pid in pids.items() if pid is not None})
    try:
        started = time.monotonic()
        t_start = started + options.warmup_s
        t_end = t_start + duration_s
        side = [asyncio.create_task(_inject(platform, load.services, gas, injected, t_start,
                                            t_end, options.inject_every_s)),
                asyncio.create_task(_dashboard(platform, city, api_ms, api_failures, t_start,
                                               t_end, options.api_every_s))]
        await _until(t_start, say, f"{readings_per_s:,.0f} readings/s: warming up")
        cpu.start()
        first = (load.readings_in(published[0]), await _stored(platform) - stored_before)
        while time.monotonic() < t_end:
            rss.append(rss_bytes(platform.proc.pid))
            left = t_end - time.monotonic()
            say(f"{readings_per_s:,.0f} readings/s: measuring, {left:.0f} s left")
            await asyncio.sleep(min(1.0, max(left, 0)))
        last = (load.readings_in(published[0]), await _stored(platform) - stored_before)
        cpu_s = cpu.stop()
        await asyncio.gather(*side)
        await _until(time.monotonic() + 5, say, "waiting for the last alerts")
    finally:
        proc.terminate()
        proc.wait()
        reader.join()
    # what the broker took: stored once the platform has worked off this run's backlog
    drain_target = stored_before + load.readings_in(acked[0])
    sustained = (last[1] - first[1]) / duration_s
    backlog_start, backlog_end = first[0] - first[1], last[0] - last[1]
    latencies = [1000 * (platform.alerts[s] - t) for s, t in injected.items()
                 if s in platform.alerts]
    held = (backlog_end - backlog_start <= FLAT_BACKLOG_S * readings_per_s
            and sustained >= HELD_FRACTION * readings_per_s)
    return {
        "offered_readings_per_s": round(readings_per_s),
        "offered_messages_per_s": round(messages_per_s),
        "sustained_readings_per_s": round(sustained),
        "backlog_start": backlog_start, "backlog_end": backlog_end,
        "held": held,
        "alert_latency_ms": _percentiles(latencies),
        "alerts_injected": len(injected), "alerts_seen": len(latencies),
        "live_reconnects": platform.reconnects - reconnects_before,
        "api_p99_ms": _percentiles([ms for by in api_ms.values() for ms in by])["p99"],
        "api_p99_ms_by_path": {path: _percentiles(by)["p99"] for path, by in api_ms.items()},
        "api_requests": sum(map(len, api_ms.values())),
        "api_failures": len(api_failures), "api_failure_examples": api_failures[:3],
        "rss_mb": round(max(rss) / 2**20) if rss else None,
        "cpu_s_per_1000_readings": per_1000(cpu_s, max(last[1] - first[1], 1)),
        "duration_s": duration_s,
        "drain_target": drain_target,
    }


def _follow(proc: subprocess.Popen[str], published: list[int], acked: list[int]) -> None:
    for line in c_publisher.progress_lines(proc):
        if isinstance(line, c_publisher.Progress):
            published[0], acked[0] = line.published, line.acknowledged


async def _until(deadline: float, say: Report, stage: str) -> None:
    say(stage)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def _inject(platform: _Platform, services: Services, gas: list[Any],
                  injected: dict[str, float], t_start: float, t_end: float,
                  every_s: float) -> None:
    """Gas readings far above the threshold, each from a detector not used before."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-inject-{os.getpid()}")
    client.connect(services.mqtt_host, services.mqtt_port)
    client.loop_start()
    try:
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        while time.monotonic() < t_end - 2 and platform.injected < len(gas):
            device = gas[-1 - platform.injected]
            platform.injected += 1
            payload = json.dumps({"ts": now_ms(), "m": {"lel_pct": INJECTED_LEL}})
            injected[device.id] = time.monotonic()
            client.publish(f"city/{device.district}/{device.id}/data", payload, qos=1)
            await asyncio.sleep(every_s)
    finally:
        client.loop_stop()
        client.disconnect()


async def _dashboard(platform: _Platform, city: City, latencies_ms: dict[str, list[float]],
                     failures: list[str], t_start: float, t_end: float,
                     every_s: float) -> None:
    await asyncio.sleep(max(0.0, t_start - time.monotonic()))
    headers = {"Authorization": f"Bearer {platform.token}"}
    i = 0
    while time.monotonic() < t_end:
        template = DASHBOARD_PATHS[i % len(DASHBOARD_PATHS)]
        path = template.format(device=city.devices[(i * 7919) % len(city.devices)].id)
        sent = time.perf_counter()
        try:
            response = await platform.api.get(path, headers=headers)
        except httpx.TimeoutException:  # counted at what it waited: the p99 shows it
            failures.append(f"GET {path}: no answer within {API_TIMEOUT_S:g} s")
        else:
            if response.status_code != 200:
                failures.append(f"GET {path}: {response.status_code} {response.text[:200]}")
        latencies_ms[template].append(1000 * (time.perf_counter() - sent))
        i += 1
        await asyncio.sleep(every_s)


async def _listen(platform: _Platform) -> None:
    """The first `gas-lel` alert event of each subject on the live stream, as it arrives.

    Like the dashboard, it reconnects when the stream ends or breaks (an overloaded platform
    may drop it) and resumes after the last event id it saw, so nothing is missed; each
    reconnection is counted."""
    last_id: str | None = None
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            async with platform.api.stream("GET", "/api/v1/live/sse", headers=headers,
                                           params={"token": platform.token},
                                           timeout=None) as stream:
                if stream.status_code == 401:  # the token ran out: log in again
                    platform.token = await _login(platform.api)
                    continue
                stream.raise_for_status()
                async for line in stream.aiter_lines():
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("type") == "alert" and event.get("rule_id") == "gas-lel":
                        platform.alerts.setdefault(event["subject"], time.monotonic())
        except httpx.HTTPError:
            pass
        platform.reconnects += 1
        await asyncio.sleep(RECONNECT_S)


async def _login(api: httpx.AsyncClient) -> str:
    login = await api.post("/api/v1/auth/token", timeout=OWN_TIMEOUT_S,
                           data={"username": USER, "password": PASSWORD})
    login.raise_for_status()
    return str(login.json()["access_token"])


async def _stored(platform: _Platform) -> int:
    return await stored_readings(platform.api)


async def stored_readings(api: httpx.AsyncClient) -> int:
    """Readings a platform has made durable (its ``urbanwatch_ingest_stored_readings``)."""
    text = (await api.get("/metrics", timeout=OWN_TIMEOUT_S)).text
    for family in text_string_to_metric_families(text):
        if family.name == "urbanwatch_ingest_stored_readings":
            return int(family.samples[0].value)
    raise RuntimeError("no urbanwatch_ingest_stored_readings in /metrics")


async def _drain(platform: _Platform, target: int) -> bool:
    """Until the platform has stored at least `target` readings (what the broker had taken by
    the publisher's last report) and then nothing more for `SETTLED_S` (what the broker took
    after it), or gave up after `DRAIN_TIMEOUT_S`; whether it got there."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        stored = await _stored(platform)
        if stored != seen:
            seen, since = stored, time.monotonic()
        elif stored >= target and time.monotonic() - since >= SETTLED_S:
            return True
        await asyncio.sleep(2.0)
    return False


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "p99": round(float(p99), 1)}


async def _add_user(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await UserStore(create_session_factory(engine)).add(
            USER, Role.operator, (), PASSWORD, now_ms())
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _platform(services: Services, state: Path, db_url: str,
                    log_path: Path) -> AsyncIterator[_Platform]:
    """`urbanwatch serve` against the benchmark's services, ready, logged in, listening."""
    port = free_port()
    env = {**os.environ, "URBANWATCH_API__SECRET_KEY": secrets.token_urlsafe(48),
           "URBANWATCH_API__ACCESS_TOKEN_TTL_S": "7200",
           "URBANWATCH_INFLUX__DATABASE": DATABASE}
    argv = [sys.executable, "-m", "urbanwatch", "serve",
            "--mqtt-url", f"mqtt://{services.mqtt_host}:{services.mqtt_port}",
            "--influx-url", services.influx_url, "--db-url", db_url, "--state-dir", str(state),
            "--api-port", str(port)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     timeout=API_TIMEOUT_S) as api:
            await wait_ready(proc, api, log_path)
            platform = _Platform(proc, api, await _login(api))
            listener = asyncio.create_task(_listen(platform))
            try:
                yield platform
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await listener
    finally:
        stop(proc)


async def wait_ready(proc: subprocess.Popen[bytes], api: httpx.AsyncClient,
                      log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"urbanwatch serve exited ({proc.returncode}):\n{tail}")
        with contextlib.suppress(httpx.TransportError):
            if (await api.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"urbanwatch serve not ready within {READY_TIMEOUT_S:g} s")
