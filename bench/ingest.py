"""Ingest benchmark: readings/s sustained from Mosquitto into InfluxDB (issue 6's targets).

Runs against a Mosquitto and an influxd it is handed (`urbanwatch bench ingest` starts
its own on free ports). A city of devices is registered in the SQL device store; each
run starts the real ingestor (`bench.ingest_worker`) in its own process, on a fresh
InfluxDB database and topic prefix, then the C publisher (`simulators/publisher.c`) sends
the pre-generated messages at QoS 1 and waits for every PUBACK. A run's time is from
the publisher's start until the ingestor's counters say every reading was stored (the CPU
seconds the ingestor, Mosquitto and influxd used meanwhile are reported per 1,000 readings). QoS 1
may deliver a message twice (``received`` > ``messages``), so those counters can get there
while some readings are still on their way: the ingestor is stopped only once InfluxDB
holds every distinct reading, or once nothing has moved for `SETTLE_S` (a real shortfall
then shows as ``stored`` < ``readings``, and ``spool_left_bytes`` says whether the spool
still held it).

Workloads: ``single`` (one reading per message, compact JSON) and ``senml50`` (SenML
packs of 50). Acknowledgement: ``after_write`` (the product: after InfluxDB or the
spool has the readings) and ``on_receipt`` (unsafe, for comparison). ``spool``: influxd
is stopped, so the readings go to the local spool; then it is started again and the
spool's replay is timed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench import loadgen
from bench.ingest_worker import WorkerSpec
from bench.proc import CpuMeter, per_1000
from devices.clock import now_ms
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from simulators import c_publisher
from simulators.city import build_city

PACKS = {"single": 1, "senml50": 50}
RUN_TIMEOUT_S = 600.0
SETTLE_S = 10.0  # give up waiting for the last readings once nothing moved for this long
Report = Callable[[str, int, int], None]  # (stage, done, total)


class Service(Protocol):
    host: str
    port: int

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class BenchSetup:
    mqtt: Service
    influx: Service
    db_url: str  # SQL device store, already migrated
    work_dir: Path  # the publisher binary, message files, spools, profiles


@dataclass(frozen=True)
class BenchOptions:
    devices: int = 1000
    single_readings: int = 150_000
    senml_readings: int = 500_000
    batch_size: int = 5000
    max_inflight: int = 1000
    spool: bool = True
    profile: bool = False  # cProfile stats of each ingestor run into work_dir


def run(setup: BenchSetup, options: BenchOptions, report: Report | None = None) -> dict[str, Any]:
    say = report or (lambda stage, done, total: None)
    say("building the publisher", 0, 0)
    publisher = c_publisher.build(setup.work_dir)
    city = build_city(options.devices, seed=0)
    asyncio.run(register(setup.db_url, list(city.devices)))
    bench = _Bench(setup, options, publisher, list(city.devices), city.catalogue, say)
    runs: dict[str, dict[str, Any]] = {}
    for workload in PACKS:
        for ack in ("after_write", "on_receipt"):
            runs[f"{workload}_{ack}"] = bench.run(workload, ack)
        if options.spool:
            runs[f"{workload}_spool"] = bench.run(workload, "after_write", influx_down=True)
    rate = {name: r["readings_per_s"] for name, r in runs.items()}
    result: dict[str, Any] = {
        "devices": options.devices,
        "batch_size": options.batch_size,
        "max_inflight": options.max_inflight,
        "readings_per_s": rate,
        "after_write_vs_on_receipt": {
            w: round(rate[f"{w}_after_write"] / rate[f"{w}_on_receipt"], 3) for w in PACKS
        },
        "runs": runs,
    }
    if options.spool:
        result["spool_vs_influx"] = {
            w: round(rate[f"{w}_spool"] / rate[f"{w}_after_write"], 3) for w in PACKS
        }
    return result


async def register(db_url: str, devices: list[Any]) -> None:
    engine = create_async_engine(db_url)
    try:
        await DeviceStore(async_sessionmaker(engine)).upsert(devices)
    finally:
        await engine.dispose()


@dataclass
class _Bench:
    setup: BenchSetup
    options: BenchOptions
    publisher: Path
    devices: list[Any]
    catalogue: Any
    say: Report

    def run(self, workload: str, ack: str, *, influx_down: bool = False) -> dict[str, Any]:
        name = f"{workload}_{'spool' if influx_down else ack}"
        n = self.options.single_readings if workload == "single" else self.options.senml_readings
        key = uuid.uuid4().hex[:10]
        work = self.setup.work_dir / f"{name}-{key}"
        work.mkdir(parents=True)
        self.say(f"{name}: generating {n:,} readings", 0, n)
        messages = work / "messages.txt"
        t0_ms = (now_ms() - 3 * 3600 * 1000) // 1000 * 1000
        n_messages = loadgen.write_messages(messages, self.devices, self.catalogue, n,
                                            PACKS[workload], f"b{key}/", t0_ms)
        database = f"bench_{key}"
        asyncio.run(create_database(self.setup.influx.url, database))
        spec = WorkerSpec(
            self.setup.mqtt.host, self.setup.mqtt.port, self.setup.influx.url, database,
            self.setup.db_url, f"uw-bench-{key}", f"b{key}/", str(work / "spool"),
            ack_on_receipt=ack == "on_receipt", batch_size=self.options.batch_size,
            log=str(work / "ingest.log"),
            profile=str(self.setup.work_dir / f"{name}.pstats") if self.options.profile else None,
        )
        with Worker(spec) as worker:
            if influx_down:
                self.setup.influx.stop()
            processes = {"ingest": worker.pid, "broker": self.setup.mqtt.pid,
                         "influxd": None if influx_down else self.setup.influx.pid}
            cpu = CpuMeter({name: pid for name, pid in processes.items() if pid is not None})
            cpu.start()
            started = time.perf_counter()
            proc = c_publisher.publish(self.publisher, self.setup.mqtt.host, self.setup.mqtt.port,
                                   messages, self.options.max_inflight)
            counter = "spooled" if influx_down else "stored_readings"
            worker.wait(lambda c: c[counter] >= n, lambda c: self.say(name, c[counter], n))
            seconds = time.perf_counter() - started
            cpu_s = cpu.stop()
            published_s = c_publisher.wait_published(proc, n_messages, RUN_TIMEOUT_S)
            out: dict[str, Any] = {"readings": n, "messages": n_messages}
            if influx_down:  # the replay's time includes the backoff the outage built up
                self.setup.influx.start()
                replay_started = time.perf_counter()
                worker.wait(lambda c: c["replayed"] >= n,
                            lambda c: self.say(f"{name}: replaying", c["replayed"], n))
                out["drained_after_restart_s"] = round(time.perf_counter() - replay_started, 3)
            wait_stored(self.setup.influx.url, database, n, worker.counters)
            final = worker.stop()
            for counter in ("spooled", "replayed", "replay_refused", "write_errors"):
                out[counter] = final[counter]
        stored = asyncio.run(count_and_drop(self.setup.influx.url, database))
        out.update({
            "stored": stored, "seconds": round(seconds, 3),
            "readings_per_s": round(n / seconds),
            "published_per_s": round(n / published_s),
            "rejected": final["rejected_total"], "batches": final["batches"],
            "redelivered": final["redelivered"],
            "received": final["received"],  # messages, duplicate deliveries included
            "spool_left_bytes": final["spool_bytes"],
            "cpu_s_per_1000_readings": per_1000(cpu_s, n),
        })
        return out


def wait_stored(url: str, database: str, n: int, activity: Callable[[], object],
                settle_s: float = SETTLE_S) -> int:
    """InfluxDB's count once it is `n`, or once neither it nor `activity()` (the
    ingestor's counters) changed for `settle_s` (or after `RUN_TIMEOUT_S`); a real
    shortfall is then returned, not waited on for ever."""
    seen, still_since = None, time.monotonic()
    deadline = still_since + RUN_TIMEOUT_S
    while True:
        stored = asyncio.run(count_readings(url, database))
        now = time.monotonic()
        if stored >= n or now > deadline:
            return stored
        state = (stored, activity())
        if state != seen:
            seen, still_since = state, now
        elif now - still_since >= settle_s:
            return stored
        time.sleep(0.2)


async def create_database(url: str, database: str) -> None:
    async with InfluxClient(url, database) as influx:
        await influx.ensure_schema()


async def count_readings(url: str, database: str) -> int:
    """Readings stored: every field value counts once (each reading is one field value)."""
    async with InfluxClient(url, database) as influx:
        return await influx.count_values()


async def count_and_drop(url: str, database: str) -> int:
    stored = await count_readings(url, database)
    async with InfluxClient(url, database) as influx:
        await influx.drop_database()
    return stored


class Worker:
    """The ingestor process of one run (`bench.ingest_worker`), driven over its stdin/stdout."""

    def __init__(self, spec: WorkerSpec) -> None:
        self._argv = [sys.executable, "-m", "bench.ingest_worker", json.dumps(asdict(spec))]
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Worker:
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
        self._receive()  # subscribed
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        if exc[0] is None:  # after `stop` it exits by itself (writing its profile)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.communicate(timeout=60)
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def counters(self) -> dict[str, Any]:
        return self._ask("counters")

    def wait(self, done: Callable[[dict[str, Any]], bool],
             progress: Callable[[dict[str, Any]], None]) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            counters = self.counters()
            progress(counters)
            if done(counters):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingest did not finish: {counters}")
            time.sleep(0.05)

    def stop(self) -> dict[str, Any]:
        """Final flush; the last counters."""
        return self._ask("stop")

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._receive()

    def _receive(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the ingestor process ended (exit code {self._proc.wait()}); "
                               "see ingest.log in the run's folder")
        return json.loads(line)
