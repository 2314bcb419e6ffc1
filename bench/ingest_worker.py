"""The ingest benchmark's ingestor process: the product pipeline, wired as the platform does.

Run as ``python -m bench.ingest_worker '<WorkerSpec as JSON>'`` (a fresh interpreter
that imports only the ingest path): registry from the SQL device store, `Ingestor` →
`SpoolingSink(InfluxSink)` with the spool in its own folder. Once subscribed it prints
a counters snapshot (one JSON line), then answers each line on stdin: ``counters`` → a
snapshot; ``stop`` (or end of input) → final flush, the last snapshot, exit. Its log
goes to a file. With `profile` set, every thread runs
under cProfile (the asyncio thread and paho's network thread) and the merged stats go
to that file.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import pstats
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from devices.catalogue import load_catalogue
from devices.decode import DecodeLimits
from devices.store import DeviceStore
from ingest.config import IngestConfig, MqttConfig
from ingest.counters import IngestCounters
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.spool import Spool
from ingest.spooling_sink import SpoolingSink
from ingest.timeseries.client import InfluxClient

READY_TIMEOUT_S = 30.0
SPOOL_MAX_BYTES = 8 << 30


@dataclass(frozen=True)
class WorkerSpec:
    mqtt_host: str
    mqtt_port: int
    influx_url: str
    database: str
    db_url: str
    client_id: str
    topic_prefix: str
    spool_dir: str
    ack_on_receipt: bool
    batch_size: int
    log: str  # the ingestor's log file (warnings: spooling, retries)
    profile: str | None = None
    share_group: str | None = None  # MQTT 5 shared subscription with other workers


def run_worker(spec: WorkerSpec, commands: TextIO, replies: TextIO) -> None:
    logging.basicConfig(filename=spec.log, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if spec.profile is None:
        asyncio.run(_serve(spec, commands, replies))
        return
    profilers = [cProfile.Profile()]

    def profile_new_thread(*_: object) -> None:
        sys.setprofile(None)
        profilers.append(cProfile.Profile())
        profilers[-1].enable()

    threading.setprofile(profile_new_thread)
    profilers[0].enable()
    try:
        asyncio.run(_serve(spec, commands, replies))
    finally:
        profilers[0].disable()
        threading.setprofile(None)
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.dump_stats(spec.profile)


async def _serve(spec: WorkerSpec, commands: TextIO, replies: TextIO) -> None:
    engine = create_async_engine(spec.db_url)
    try:
        registry = await DeviceStore(async_sessionmaker(engine)).load_registry(load_catalogue())
    finally:
        await engine.dispose()
    influx = InfluxClient(spec.influx_url, spec.database)
    counters = IngestCounters()
    sink = SpoolingSink(InfluxSink(influx, lambda: registry),
                        Spool(Path(spec.spool_dir), max_bytes=SPOOL_MAX_BYTES), counters,
                        lambda: registry)
    config = IngestConfig(
        mqtt=MqttConfig(spec.mqtt_host, spec.mqtt_port, spec.client_id,
                        topic_prefix=spec.topic_prefix, share_group=spec.share_group),
        limits=DecodeLimits(), batch_size=spec.batch_size, ack_on_receipt=spec.ack_on_receipt,
    )
    ingestor = Ingestor(config, lambda: registry, sink, counters=counters)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(sink.run(stop)), asyncio.create_task(ingestor.run(stop))]

    def reply() -> None:
        replies.write(json.dumps(counters.snapshot()) + "\n")
        replies.flush()

    try:
        await ingestor.wait_ready(READY_TIMEOUT_S)
        reply()
        while (await asyncio.to_thread(commands.readline)).strip() == "counters":
            reply()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await influx.aclose()
    reply()


if __name__ == "__main__":
    run_worker(WorkerSpec(**json.loads(sys.argv[1])), sys.stdin, sys.stdout)
