"""SpoolingSink over a real InfluxSink: outages go to the spool and replay once influxd is back."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.registry import Device, Registry
from ingest.config import IngestConfig
from ingest.counters import IngestCounters
from ingest.deadletter import DeadLetter
from ingest.errors import InfluxError
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.spool import Spool
from ingest.spool_record import RecordEncoder
from ingest.spooling_sink import SpoolingSink
from ingest.timeseries.client import InfluxClient
from tests.ingest.conftest import Publisher
from tests.support.polling import eventually
from tests.support.stored_readings import stored_readings
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

N = 40  # readings per batch: half aq-1 pm25, half n-1 laeq_db, all distinct timestamps


def batches(registry: Registry, count: int, t0_ms: int) -> list[ReadingBatch]:
    aq, noise = registry.slot("aq-1", "pm25"), registry.slot("n-1", "laeq_db")
    assert aq is not None and noise is not None
    out = []
    for b in range(count):
        ts = t0_ms + (b * N + np.arange(N)) * 10
        slots = np.where(np.arange(N) % 2 == 0, aq, noise)
        out.append(ReadingBatch.from_columns(slots, ts, 30 + np.arange(N) % 17 + b / 8))
    return out


def sink_over(client: InfluxClient, registry: Registry, directory: Path,
              max_bytes: int = 1 << 20, **kwargs: object) -> SpoolingSink:
    return SpoolingSink(InfluxSink(client, lambda: registry), Spool(directory, max_bytes),
                        IngestCounters(), lambda: registry, retry_initial_s=0.05,
                        retry_max_s=0.5, **kwargs)  # type: ignore[arg-type]


async def stored(client: InfluxClient) -> int:
    return await client.count("air_quality") + await client.count("noise")


def t0() -> int:
    return time.time_ns() // 1_000_000 - 3_600_000


async def test_outage_spools_and_replay_stores_every_reading(
    influxd: Influxd, influx_db: InfluxClient, registry: Registry, tmp_path: Path
) -> None:
    sink = sink_over(influx_db, registry, tmp_path / "spool")
    todo = batches(registry, 5, t0())
    assert await sink.write(todo[0]) == [] and not sink.spooling  # straight to InfluxDB
    influxd.stop()
    for b in todo[1:4]:
        assert await sink.write(b) == []  # no exception: durable in the spool
    assert sink.spooling and sink.counters.spooled == 3 * N
    assert sink.counters.spool_bytes == sink.spool.size_bytes > 0
    assert not await sink.replay()  # still down: nothing lost, nothing consumed
    assert len(sink.spool) == 3
    influxd.start()
    assert await sink.write(todo[4]) == []  # behind the spooled ones, to keep the order
    assert sink.counters.spooled == 4 * N and len(sink.spool) == 4
    assert await sink.replay()
    assert not sink.spooling and sink.counters.replayed == 4 * N
    assert sink.counters.spool_bytes == 0 and list((tmp_path / "spool").iterdir()) == []
    assert await stored(influx_db) == 5 * N


async def test_background_run_drains_once_influxd_is_back(
    influxd: Influxd, influx_db: InfluxClient, registry: Registry, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = sink_over(influx_db, registry, tmp_path / "spool")
    stop = asyncio.Event()
    runner = asyncio.create_task(sink.run(stop))
    influxd.stop()
    for b in batches(registry, 6, t0()):
        await sink.write(b)

    def failed_replays() -> int:
        return sum("spooled readings failed" in r.getMessage() for r in caplog.records)

    await eventually(lambda: failed_replays() >= 3, "a few failed replays with the server down")
    assert len(sink.spool) == 6 and sink.counters.replayed == 0
    influxd.start()
    await eventually(lambda: not sink.spooling, "the spool drained")
    stop.set()
    await asyncio.wait_for(runner, 10)
    assert sink.counters.replayed == 6 * N and await stored(influx_db) == 6 * N


async def test_a_spool_left_by_a_previous_process_is_replayed(
    influx_db: InfluxClient, registry: Registry, tmp_path: Path
) -> None:
    down = InfluxClient(f"http://127.0.0.1:{free_port()}", influx_db.database)
    try:
        first = sink_over(down, registry, tmp_path / "spool")
        for b in batches(registry, 3, t0()):
            await first.write(b)
    finally:
        await down.aclose()
    second = sink_over(influx_db, registry, tmp_path / "spool")
    assert second.spooling and second.counters.spool_bytes > 0
    assert await second.replay()
    assert await stored(influx_db) == 3 * N and second.counters.replayed == 3 * N


async def test_full_spool_raises_a_retryable_error_and_holds_the_batch(
    influx_db: InfluxClient, registry: Registry, tmp_path: Path
) -> None:
    down = InfluxClient(f"http://127.0.0.1:{free_port()}", influx_db.database)
    try:
        todo = batches(registry, 3, t0())
        one = 12 + len(RecordEncoder().encode(registry, todo[0]))  # header + payload
        sink = sink_over(down, registry, tmp_path / "spool", max_bytes=2 * one + 10)
        await sink.write(todo[0])
        await sink.write(todo[1])
        with pytest.raises(InfluxError) as raised:
            await sink.write(todo[2])
    finally:
        await down.aclose()
    assert raised.value.retryable and "spool full" in str(raised.value)
    assert sink.counters.spool_full == 1 and sink.counters.spooled == 2 * N
    assert len(sink.spool) == 2


async def test_points_refused_on_replay_are_counted_and_dead_lettered(
    influxd: Influxd, influx_db: InfluxClient, registry: Registry, tmp_path: Path
) -> None:
    start = t0()
    await influx_db.write(f'air_quality,device_id=aq-1 pm25="text" {start - 5}'.encode())
    letters: list[DeadLetter] = []

    async def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    sink = sink_over(influx_db, registry, tmp_path / "spool", dead_letter=dead_letter)
    influxd.stop()
    (b,) = batches(registry, 1, start)
    await sink.write(b)
    influxd.start()
    assert await sink.replay()
    pm25 = int(np.count_nonzero(b.slot == registry.slot("aq-1", "pm25")))
    assert sink.counters.replay_refused == pm25 and sink.counters.replayed == N - pm25
    assert len(letters) == pm25  # one line per reading here: distinct timestamps
    assert {(x.device_id, x.reason) for x in letters} == {("aq-1", "write_rejected")}
    assert all("conflict" in x.detail and x.payload.startswith(b"air_quality,") for x in letters)
    assert await influx_db.count("noise") == N - pm25 and not sink.spooling


async def test_ingestor_keeps_acknowledging_through_an_influxd_outage(
    settings: Settings, influxd: Influxd, influx_db: InfluxClient, registry: Registry,
    publisher: Publisher,
) -> None:
    counters = IngestCounters()
    sink = SpoolingSink(InfluxSink(influx_db, lambda: registry),
                        Spool(settings.state_dir / "spool", 16 << 20), counters,
                        lambda: registry, retry_initial_s=0.05, retry_max_s=0.5)
    config = IngestConfig.from_settings(settings, batch_size=25, flush_interval_s=0.1)
    ingestor = Ingestor(config, lambda: registry, sink, counters=counters)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(ingestor.run(stop)), asyncio.create_task(sink.run(stop))]
    await ingestor.wait_ready(30)
    start = t0()

    def send(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            publisher.send("city/d1/aq-1/data",
                           {"ts": start + i, "m": {"pm25": i / 4, "pm10": 40 + i % 9}})

    send(0, 60)
    await eventually(lambda: counters.stored_messages == 60, "60 messages stored directly")
    influxd.stop()
    send(60, 160)  # every one acknowledged after its batch is fsynced in the spool
    await eventually(lambda: counters.stored_messages == 160, "the outage's messages spooled")
    assert counters.spooled > 0 and counters.replayed == 0
    influxd.start()
    send(160, 200)
    await eventually(lambda: counters.stored_messages == 200 and not sink.spooling,
                     "everything stored and the spool drained")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert counters.replayed == counters.spooled and counters.stored_readings == 400
    assert await influx_db.count("air_quality") == 200
    assert list((settings.state_dir / "spool").iterdir()) == []


async def test_a_failing_spool_disk_holds_the_batch_instead_of_crashing(
    influx_db: InfluxClient, registry: Registry, tmp_path: Path
) -> None:
    down = InfluxClient(f"http://127.0.0.1:{free_port()}", influx_db.database)
    try:
        sink = sink_over(down, registry, tmp_path / "spool")
        (tmp_path / "spool").rmdir()  # the disk under the spool is gone
        todo = batches(registry, 2, t0())
        with pytest.raises(InfluxError) as raised:
            await sink.write(todo[0])
        assert raised.value.retryable and sink.counters.spooled == 0
        (tmp_path / "spool").mkdir()
        await sink.write(todo[0])
        await sink.write(todo[1])
    finally:
        await down.aclose()
    assert sink.counters.spool_full == 1 and sink.counters.spooled == 2 * N
    assert len(sink.spool) == 2


async def test_spooled_readings_replay_under_their_series_after_the_registry_changed(
    influx_db: InfluxClient, registry: Registry, tmp_path: Path
) -> None:
    """Spooled by one process; replayed by the next, whose registry lost aq-1, re-typed
    n-1 and gained a device that now holds aq-1's old slots."""
    todo = batches(registry, 2, t0())
    down = InfluxClient(f"http://127.0.0.1:{free_port()}", influx_db.database)
    try:
        first = sink_over(down, registry, tmp_path / "spool")
        for b in todo:
            await first.write(b)
    finally:
        await down.aclose()
    later = Registry.build(registry.catalogue, [
        Device("w-9", "water_level", "d9", 0.0, 0.0),
        Device("n-1", "water_level", "d2", 31.3, 121.4, grid="g7"),
        *(d for d in registry.devices.values() if d.id not in ("aq-1", "n-1")),
    ])
    pm25 = registry.slot("aq-1", "pm25")
    assert pm25 is not None and later.series(pm25).device_id == "w-9"  # a trap if trusted
    second = sink_over(influx_db, later, tmp_path / "spool")
    assert await second.replay()
    expected = {}
    for b in todo:
        for slot, ts, value in zip(b.slot.tolist(), b.ts_ms.tolist(), b.value.tolist(),
                                   strict=True):
            series = registry.series(slot)
            measurement = registry.devices[series.device_id].type
            expected[(measurement, series.device_id, series.metric, ts)] = value
    assert await stored_readings(influx_db) == expected
    assert second.counters.replayed == 2 * N


async def test_a_version_1_record_is_dead_lettered_and_the_records_after_it_replay(
    influx_db: InfluxClient, registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    old, new = batches(registry, 2, t0())
    v1 = b"".join((struct.pack("<Q", len(old)), old.slot.astype("<i8").tobytes(),
                   old.ts_ms.astype("<i8").tobytes(), old.value.astype("<f8").tobytes()))
    (spool_dir / "seg-000000000000.spool").write_bytes(
        struct.pack("<4sII", b"UWS1", len(v1), zlib.crc32(v1)) + v1)
    Spool(spool_dir, 1 << 20).append(RecordEncoder().encode(registry, new))
    letters: list[DeadLetter] = []
    confirm = [False, True]  # the broker does not confirm the first letter in time

    async def dead_letter(letter: DeadLetter) -> None:
        if not confirm.pop(0):
            raise TimeoutError
        letters.append(letter)

    sink = sink_over(influx_db, registry, spool_dir, dead_letter=dead_letter)
    assert not await sink.replay() and len(sink.spool) == 2  # kept until its letter is out
    assert await sink.replay() and not sink.spooling
    (letter,) = letters
    assert (letter.device_id, letter.reason, letter.topic) == ("unknown", "spool_unplaceable", "")
    assert "seg-000000000000.spool at byte 0" in letter.detail
    assert f"({N} readings)" in letter.detail
    assert "version-1" in letter.detail and letter.payload == v1
    assert sink.counters.unplaceable_records == 1 and sink.counters.replayed == N
    assert await stored(influx_db) == N  # the version-1 readings were not written anywhere
    assert {ts for (_, _, _, ts) in await stored_readings(influx_db)} == set(new.ts_ms.tolist())
    assert any("cannot be placed" in r.getMessage() for r in caplog.records)
