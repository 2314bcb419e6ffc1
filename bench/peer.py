"""`bench peer`: urbanwatch's ingest against a Node-RED flow on the same stream, in one run.

The stream is the ingest benchmark's ``single`` workload (one reading per QoS 1 message, compact
JSON, pre-generated, sent by the C publisher as fast as the broker takes it). Rounds alternate:
urbanwatch's ingest (`bench.ingest_worker`, the product pipeline: acknowledged after the durable
write), then Node-RED 4 with ``node-red-contrib-influxdb`` (installed by the benchmark from the
npm registry into ``<state>/cache/node-red``, never into the repository), each on a fresh
database of the same InfluxDB and a fresh topic prefix. The Node-RED flow is what a careful user
would build: mqtt in (QoS 1) → json → function (the reading as an InfluxDB point) → join (arrays
of up to `BATCH` points, or what arrived in `BATCH_TIMEOUT_S`) → influxdb batch out. Both are
counted back the same way: a round's time runs from the publisher's start until InfluxDB holds
every reading (polled with the same count query).

With ``processes`` > 1 urbanwatch runs that many ingest processes sharing one subscription
(MQTT 5 shared subscription ``$share/<group>/…``: the broker hands each message to one of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.ingest import (
    BenchSetup,
    Worker,
    count_and_drop,
    count_readings,
    create_database,
    register,
    wait_stored,
)
from bench.ingest_worker import WorkerSpec
from bench.proc import CpuMeter, cpu_seconds, per_1000, stop
from devices.clock import now_ms
from simulators import c_publisher
from simulators.city import build_city
from urbanwatch.services.ports import free_port

NODE_RED = "node-red@4"
INFLUX_NODES = "node-red-contrib-influxdb"
BATCH = 5000  # as urbanwatch's default batch (ingest.batch_size)
BATCH_TIMEOUT_S = 0.5  # as urbanwatch's default flush interval
START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 600.0
Report = Callable[[str], None]
POINT = """const parts = msg.topic.split('/');
const m = msg.payload.m;
msg.payload = {measurement: 'reading', tags: {device: parts[parts.length - 2],
    district: parts[parts.length - 3]}, fields: m, timestamp: msg.payload.ts};
return msg;"""


class PeerError(Exception):
    """Node-RED could not be installed or started, or did not store what was sent."""


@dataclass(frozen=True)
class PeerOptions:
    readings: int = 150_000
    devices: int = 1000
    rounds: int = 2
    processes: int = 1  # urbanwatch ingest processes sharing the subscription


def install_node_red(cache: Path) -> Path:
    """Node-RED and the InfluxDB nodes from the npm registry into `cache` (once)."""
    red = cache / "node_modules" / "node-red" / "red.js"
    if red.exists() and (cache / "node_modules" / INFLUX_NODES).exists():
        return red
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise PeerError("bench peer needs Node.js and npm (sudo apt-get install -y nodejs npm)")
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
                           "--loglevel=error", NODE_RED, INFLUX_NODES],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not red.exists():
        raise PeerError(f"npm install {NODE_RED} {INFLUX_NODES} failed:\n{done.stderr[-800:]}")
    return red


def run(setup: BenchSetup, cache: Path, options: PeerOptions,
        report: Report | None = None) -> dict[str, Any]:
    say = report or (lambda stage: None)
    say("installing Node-RED (npm, once)")
    red = install_node_red(cache)
    publisher = c_publisher.build(setup.work_dir)
    city = build_city(options.devices, seed=0)
    asyncio.run(register(setup.db_url, list(city.devices)))
    rounds: list[dict[str, Any]] = []
    for i in range(options.rounds):
        for contender in ("urbanwatch", "nodered"):
            say(f"round {i + 1}/{options.rounds}: {contender}, {options.readings:,} readings")
            key = uuid.uuid4().hex[:10]
            work = setup.work_dir / f"{contender}-{key}"
            work.mkdir(parents=True)
            messages = work / "messages.txt"
            n_messages = loadgen.write_messages(
                messages, list(city.devices), city.catalogue, options.readings, 1, f"p{key}/",
                (now_ms() - 3 * 3600 * 1000) // 1000 * 1000)
            database = f"bench_peer_{key}"
            asyncio.run(create_database(setup.influx.url, database))
            contenders = {"urbanwatch": _urbanwatch(setup, work, database, key, options),
                          "nodered": _node_red(red, setup, work, database, key)}
            with contenders[contender] as pids:
                cpu = CpuMeter({**pids, **({"broker": setup.mqtt.pid} if setup.mqtt.pid
                                           else {})})
                cpu.start()
                started = time.perf_counter()
                proc = c_publisher.publish(publisher, setup.mqtt.host, setup.mqtt.port, messages,
                                           1000)
                # still busy (its CPU time moves): not yet a shortfall
                wait_stored(setup.influx.url, database, options.readings,
                            lambda: round(sum(cpu_seconds(p) for p in pids.values()), 1))
                seconds = time.perf_counter() - started
                cpu_s = cpu.stop()
                c_publisher.wait_published(proc, n_messages, RUN_TIMEOUT_S)
            stored = asyncio.run(count_and_drop(setup.influx.url, database))
            if stored != options.readings:
                raise PeerError(f"{contender} stored {stored:,} of {options.readings:,} "
                                f"(logs in {work})")
            shutil.rmtree(work, ignore_errors=True)
            rounds.append({"contender": contender, "readings": options.readings,
                           "stored": stored, "seconds": round(seconds, 3),
                           "readings_per_s": round(options.readings / seconds),
                           "cpu_s_per_1000_readings": per_1000(cpu_s, options.readings)})
    rates = {c: [r["readings_per_s"] for r in rounds if r["contender"] == c]
             for c in ("urbanwatch", "nodered")}
    uw, nr = (sum(v) / len(v) for v in rates.values())
    return {
        "urbanwatch_readings_per_s": round(uw), "nodered_readings_per_s": round(nr),
        "ratio": round(uw / nr, 3),
        "rounds": rounds, "ingest_processes": options.processes,
        "node_red": _versions(red), "readings": options.readings,
    }


@contextlib.contextmanager
def _urbanwatch(setup: BenchSetup, work: Path, database: str, key: str,
                options: PeerOptions) -> Iterator[dict[str, int]]:
    spec = WorkerSpec(
        setup.mqtt.host, setup.mqtt.port, setup.influx.url, database, setup.db_url,
        f"uw-peer-{key}", f"p{key}/", str(work / "spool"), ack_on_receipt=False,
        batch_size=BATCH, log=str(work / "ingest.log"),
        share_group=f"uw-{key}" if options.processes > 1 else None,
    )
    with contextlib.ExitStack() as stack:
        workers = [stack.enter_context(Worker(replace(
            spec, client_id=f"{spec.client_id}-{i}", spool_dir=f"{spec.spool_dir}-{i}",
            log=f"{spec.log}.{i}"))) for i in range(options.processes)]
        yield {f"ingest{i or ''}": w.pid for i, w in enumerate(workers)}
        for worker in workers:
            worker.stop()


@contextlib.contextmanager
def _node_red(red: Path, setup: BenchSetup, work: Path, database: str,
              key: str) -> Iterator[dict[str, int]]:
    user_dir = work / "node-red"
    user_dir.mkdir()
    flows = user_dir / "flows.json"
    flows.write_text(json.dumps(_flow(setup, database, f"p{key}/")))
    log_path = work / "node-red.log"
    argv = ["node", str(red), "--userDir", str(user_dir), "--port", str(free_port()),
            str(flows)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        _wait_for_line(proc, log_path, "Connected to broker")
        _probe(setup, key, database)
        yield {"nodered": proc.pid}
    finally:
        stop(proc, timeout_s=30)


def _flow(setup: BenchSetup, database: str, prefix: str) -> list[dict[str, Any]]:
    influx_port = int(setup.influx.url.rsplit(":", 1)[1])
    config: list[dict[str, Any]] = [
        {"id": "broker", "type": "mqtt-broker", "name": "bench", "broker": setup.mqtt.host,
         "port": str(setup.mqtt.port), "clientid": "", "autoConnect": True, "usetls": False,
         "protocolVersion": "4", "keepalive": "60", "cleansession": True},
        {"id": "influx", "type": "influxdb", "hostname": "127.0.0.1", "port": str(influx_port),
         "protocol": "http", "database": database, "name": "", "usetls": False,
         "influxdbVersion": "1.x"},
        {"id": "tab", "type": "tab", "label": "bench"},
    ]
    flow: list[dict[str, Any]] = [
        # flow nodes need a position: Node-RED takes nodes without one for config nodes
        {"id": "in", "type": "mqtt in", "topic": f"{prefix}city/+/+/data", "qos": "1",
         "datatype": "utf8", "broker": "broker", "nl": False, "rap": True, "rh": 0, "inputs": 0,
         "wires": [["json"]]},
        {"id": "json", "type": "json", "property": "payload", "action": "obj", "pretty": False,
         "wires": [["point"]]},
        {"id": "point", "type": "function", "func": POINT, "outputs": 1, "wires": [["join"]]},
        {"id": "join", "type": "join", "mode": "custom", "build": "array", "property": "payload",
         "propertyType": "msg", "key": "topic", "joiner": "\\n", "joinerType": "str",
         "accumulate": False, "timeout": str(BATCH_TIMEOUT_S), "count": str(BATCH),
         "reduceRight": False, "wires": [["out"]]},
        {"id": "out", "type": "influxdb batch", "influxdb": "influx", "precision": "ms",
         "retentionPolicy": "", "name": "", "database": "", "wires": []},
    ]
    return [*config, *({**node, "z": "tab", "x": 100 + 150 * i, "y": 100}
                       for i, node in enumerate(flow))]


def _wait_for_line(proc: subprocess.Popen[bytes], log_path: Path, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while text not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise PeerError(f"Node-RED did not start ({text!r} not logged):\n{tail}")
        time.sleep(0.1)


def _probe(setup: BenchSetup, key: str, database: str) -> None:
    """Until a probe reading has gone through the flow (so it is subscribed), then its
    database is emptied again: the same point every time, so it is stored once."""
    probe = setup.work_dir / f"probe-{key}.txt"
    probe.write_text(f'p{key}/city/probe/probe-0/data\t{{"ts":{now_ms()},"m":{{"probe":1}}}}\n')
    binary = c_publisher.build(setup.work_dir)
    deadline = time.monotonic() + START_TIMEOUT_S
    sent = 0.0
    while asyncio.run(count_readings(setup.influx.url, database)) == 0:
        if time.monotonic() > deadline:
            raise PeerError("Node-RED's flow stored nothing of the probe")
        if sent == 0 or time.monotonic() - sent > 5:  # lost before it subscribed: again
            c_publisher.wait_published(
                c_publisher.publish(binary, setup.mqtt.host, setup.mqtt.port, probe, 10), 1, 30)
            sent = time.monotonic()
        time.sleep(0.2)
    time.sleep(2 * BATCH_TIMEOUT_S)  # a probe sent twice: let its second batch go out first
    asyncio.run(count_and_drop(setup.influx.url, database))
    asyncio.run(create_database(setup.influx.url, database))


def _versions(red: Path) -> dict[str, str]:
    modules = red.parent.parent
    return {name: json.loads((modules / name / "package.json").read_text())["version"]
            for name in ("node-red", INFLUX_NODES)}

