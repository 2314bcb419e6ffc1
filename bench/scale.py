"""`bench scale`: one partitioned worker against two, working off the same stream.

Every worker is a real `urbanwatch serve --partition k/N` process (ingest, the engine with the
default pack, alerts, dispatch, the API) against the benchmark's own Mosquitto and influxd and
a throwaway PostgreSQL cluster holding a city of `devices` devices. The stream is the city's
messages (each device's metrics in one compact JSON message), generated first and sent at QoS 1
by the C publisher in its own process, the same file for both rounds.

Each round (N = 1, then 2) measures how fast N workers work off a backlog of that stream, so
the publisher does not compete with them for the CPU: the round's workers start once (their
persistent MQTT sessions subscribe to their districts), stop cleanly, the whole file is
published to the broker, which queues it for the sessions, and the workers start again and
drain it. The rate is the readings the workers stored (the sum of their
``urbanwatch_ingest_stored_readings``) between 10 % and 90 % of the backlog, over that time;
the CPU seconds of each process (workers, Mosquitto, influxd, PostgreSQL with its backends)
over the same window say what limits it: the share of a core each process got, and its CPU
seconds per 1,000 readings, which hardly depend on how long it waited for a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.e2e import API_TIMEOUT_S, Services, stored_readings, wait_ready
from bench.postgres import throwaway_cluster
from bench.proc import CpuMeter, per_1000, stop
from simulators import c_publisher
from simulators.city import build_city
from urbanwatch.demo import import_city
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

JSON_KEYS = ("one_worker_readings_per_s", "two_workers_readings_per_s", "ratio")
WINDOW = (0.1, 0.9)  # the part of the backlog the rate is measured over
POLL_S = 0.25
Report = Callable[[str], None]


@dataclass(frozen=True)
class ScaleOptions:
    devices: int = 20_000
    messages: int = 100_000
    timeout_s: float = 300.0  # a round's drain gives up after this long
    seed: int = 1


@dataclass(frozen=True)
class _Setup:
    services: Services
    work: Path
    db_url: str
    postgres_pid: int
    publisher: Path
    messages: Path
    readings: int  # in the whole file


def run(services: Services, work: Path, options: ScaleOptions,
        report: Report | None = None) -> dict[str, Any]:
    return asyncio.run(_run(services, work, options, report or (lambda stage: None)))


async def _run(services: Services, work: Path, options: ScaleOptions,
               say: Report) -> dict[str, Any]:
    load_before = round(os.getloadavg()[0], 2)
    with throwaway_cluster() as cluster:
        db_url = cluster.url
        say(f"provisioning {options.devices:,} devices in PostgreSQL")
        await import_city(Settings(state_dir=work / "state", db={"url": db_url}),
                          options.devices, options.seed)
        say("generating the city's messages")
        city = build_city(options.devices, options.seed)
        messages = work / "city.txt"
        per_line = c_publisher.write_city_messages(messages, city, options.messages, 10_000)
        setup = _Setup(services, work, db_url, cluster.pid,
                       c_publisher.build(work), messages, int(np.sum(per_line)))
        rounds = [await _round(setup, n, options, say) for n in (1, 2)]
    one, two = (r["readings_per_s"] for r in rounds)
    return {
        "one_worker_readings_per_s": one,
        "two_workers_readings_per_s": two,
        "ratio": round(two / one, 2) if one else None,
        "devices": options.devices,
        "readings": setup.readings,
        "messages": options.messages,
        "cpu_cores": os.cpu_count(),
        "load_average_1m_before": load_before,  # other work on the machine, if any
        "rounds": rounds,
    }


async def _round(setup: _Setup, n: int, options: ScaleOptions, say: Report) -> dict[str, Any]:
    """N workers drain the whole file, queued for their sessions while they were stopped."""
    client_id = f"bench-scale-{n}w-{secrets.token_hex(3)}"
    database = f"bench_scale_{n}"
    say(f"{n} worker(s): subscribing")
    async with _workers(setup, n, client_id, database, "subscribe"):
        pass  # their sessions now hold their districts' subscriptions
    say(f"{n} worker(s): publishing {options.messages:,} messages while they are stopped")
    s = setup.services
    proc = c_publisher.publish(setup.publisher, s.mqtt_host, s.mqtt_port, setup.messages, 1000,
                               qos=1, stamped=True)
    await asyncio.to_thread(c_publisher.wait_published, proc, options.messages,
                            options.timeout_s)
    async with _workers(setup, n, client_id, database, "drain") as workers:
        pids = {**{f"worker {k + 1}": w.proc.pid for k, w in enumerate(workers)},
                "mosquitto": s.broker_pid, "influxd": s.influxd_pid,
                "postgresql": setup.postgres_pid}
        cpu = CpuMeter({name: pid for name, pid in pids.items() if pid is not None},
                       trees=frozenset({"postgresql"}))
        low, high = (round(f * setup.readings) for f in WINDOW)
        deadline = time.monotonic() + options.timeout_s
        marks: list[tuple[float, int]] = []
        cpu_s: dict[str, float] = {}
        while not marks or marks[-1][1] < high:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} worker(s) stored {marks[-1][1] if marks else 0:,} of "
                                   f"{setup.readings:,} readings in {options.timeout_s:g} s")
            each = await asyncio.gather(*(stored_readings(w.api) for w in workers))
            stored = sum(each)
            if stored >= low and not marks:
                cpu.start()
                marks.append((time.monotonic(), stored))
            elif stored >= high and marks:
                cpu_s = cpu.stop()
                marks.append((time.monotonic(), stored))
            say(f"{n} worker(s): {stored:,} of {setup.readings:,} readings stored")
            await asyncio.sleep(POLL_S)
    (t0, s0), (t1, s1) = marks
    seconds = t1 - t0
    return {
        "workers": n,
        "readings_per_s": round((s1 - s0) / seconds),
        "stored_by_worker": each,  # at the end of the window: how evenly the city split
        "seconds": round(seconds, 2),
        "cpu_s": {name: round(v, 2) for name, v in cpu_s.items()},
        "cpu_share": {name: round(v / seconds, 2) for name, v in cpu_s.items()},
        "cpu_s_per_1000_readings": per_1000(cpu_s, s1 - s0),
    }


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    api: httpx.AsyncClient


@contextlib.asynccontextmanager
async def _workers(setup: _Setup, n: int, client_id: str, database: str,
                   stage: str) -> AsyncIterator[list[_Worker]]:
    """`urbanwatch serve --partition k/n` for k in 1..n, ready; stopped cleanly after."""
    workers: list[_Worker] = []
    logs: list[Path] = []
    async with contextlib.AsyncExitStack() as stack:
        for k in range(1, n + 1):  # all started before any is waited for: they drain together
            logs.append(setup.work / f"worker-{n}w-{k}-{stage}.log")
            port = free_port()
            proc = _start(setup, f"{k}/{n}", setup.work / f"state-{n}w-{k}", port, client_id,
                          database, logs[-1])
            stack.callback(stop, proc)
            api = await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=API_TIMEOUT_S))
            workers.append(_Worker(proc, api))
        await asyncio.gather(*(wait_ready(w.proc, w.api, log)
                               for w, log in zip(workers, logs, strict=True)))
        yield workers


def _start(setup: _Setup, partition: str, state: Path, port: int, client_id: str,
           database: str, log_path: Path) -> subprocess.Popen[bytes]:
    s = setup.services
    env = {**os.environ, "URBANWATCH_API__SECRET_KEY": secrets.token_urlsafe(48),
           "URBANWATCH_INFLUX__DATABASE": database, "URBANWATCH_MQTT__CLIENT_ID": client_id}
    argv = [sys.executable, "-m", "urbanwatch", "serve", "--partition", partition,
            "--mqtt-url", f"mqtt://{s.mqtt_host}:{s.mqtt_port}", "--influx-url", s.influx_url,
            "--db-url", setup.db_url, "--state-dir", str(state), "--api-port", str(port)]
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

