"""The ingest bench counts InfluxDB only once the last readings have arrived.

QoS 1 may deliver a message twice, so the ingestor's counters can reach the number of
readings sent while some are still on their way; counting then (and stopping the
ingestor) reported readings as lost that were merely late. `wait_stored` waits for
InfluxDB itself, and still returns a real shortfall once nothing moves.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from bench.ingest import count_readings, wait_stored
from ingest.timeseries.client import InfluxClient
from urbanwatch.services.influxd import Influxd

pytestmark = pytest.mark.services
N = 600


def _lines(lo: int, hi: int) -> bytes:
    t0_ms = time.time_ns() // 1_000_000 - 3600_000
    return b"".join(f"noise,device_id=n-{i % 50} db={i}.5 {t0_ms + i * 1000}\n".encode()
                    for i in range(lo, hi))


async def _write(url: str, database: str, body: bytes) -> None:
    async with InfluxClient(url, database) as influx:
        await influx.write(body, precision="ms")


@pytest.fixture
def database(influxd: Influxd) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        async with InfluxClient(influxd.url, name) as influx:
            await influx.ensure_schema()

    async def drop() -> None:
        async with InfluxClient(influxd.url, name) as influx:
            await influx.drop_database()

    asyncio.run(create())
    yield name
    asyncio.run(drop())


def test_waits_for_readings_still_on_their_way(influxd: Influxd, database: str) -> None:
    asyncio.run(_write(influxd.url, database, _lines(0, N // 2)))
    counted_at_once = asyncio.run(count_readings(influxd.url, database))
    polled = threading.Semaphore(0)
    batches_written = [0]

    def activity() -> int:  # wait_stored looked again: let the next late batch through
        polled.release()
        return batches_written[0]

    def late_batches() -> None:  # the tail, as an ingestor still draining would store it
        for lo in range(N // 2, N, N // 6):
            if not polled.acquire(timeout=10):
                return  # wait_stored gave up: the assertions below say so
            asyncio.run(_write(influxd.url, database, _lines(lo, lo + N // 6)))
            batches_written[0] += 1

    writer = threading.Thread(target=late_batches)
    writer.start()
    try:
        stored = wait_stored(influxd.url, database, N, activity, settle_s=3.0)
    finally:
        writer.join()

    assert counted_at_once < N  # what counting straight away would have reported
    assert stored == N


def test_returns_a_real_shortfall_once_nothing_moves(influxd: Influxd, database: str) -> None:
    asyncio.run(_write(influxd.url, database, _lines(0, N - 7)))

    stored = wait_stored(influxd.url, database, N, lambda: "idle", settle_s=0.5)

    assert stored == N - 7
