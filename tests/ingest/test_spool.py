"""The durable spool on its own: order, reopening, crash and corruption recovery, size limit."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from devices.batch import ReadingBatch
from ingest.spool import MAGIC, Spool, SpoolFull, decode_batch, encode_batch


def batch(i: int, n: int = 3) -> ReadingBatch:
    return ReadingBatch.from_columns(
        np.arange(n) + 10 * i, 1_700_000_000_000 + np.arange(n) * 1000 + i, np.arange(n) / 7 + i
    )


def same(a: ReadingBatch, b: ReadingBatch) -> bool:
    return (np.array_equal(a.slot, b.slot) and np.array_equal(a.ts_ms, b.ts_ms)
            and np.array_equal(a.value, b.value))


def drain(spool: Spool) -> list[ReadingBatch]:
    out = []
    while (spooled := spool.peek()) is not None:
        out.append(spooled.batch)
        spool.consume(spooled)
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.spool"))


def test_encoding_round_trips_exact_values() -> None:
    b = ReadingBatch.from_columns([0, 2**40], [-1, 2**62], [np.nan, -0.0])
    back = decode_batch(encode_batch(b))
    assert back.slot.tolist() == [0, 2**40] and back.ts_ms.tolist() == [-1, 2**62]
    assert np.isnan(back.value[0]) and np.signbit(back.value[1])
    assert len(decode_batch(encode_batch(ReadingBatch.empty()))) == 0


def test_replays_in_order_across_segments_and_deletes_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=200)
    for i in range(10):
        spool.append(batch(i))
    assert len(spool) == 10 and len(segments(tmp_path)) > 2
    out = drain(spool)
    assert [int(b.slot[0]) for b in out] == [10 * i for i in range(10)]
    assert all(same(a, batch(i)) for i, a in enumerate(out))
    assert segments(tmp_path) == [] and spool.size_bytes == 0 and spool.peek() is None


def test_reopening_keeps_unconsumed_records_and_appends_after_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(batch(i))
    spool.consume(spool.peek())  # type: ignore[arg-type]
    # not deleted yet (the segment still has records): replay resumes at its start
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert len(reopened) == 3
    assert reopened.size_bytes == sum(p.stat().st_size for p in segments(tmp_path)) > 0
    reopened.append(batch(3))
    assert [int(b.slot[0]) for b in drain(reopened)] == [0, 10, 20, 30]
    assert reopened.corrupt_records_skipped == 0 and segments(tmp_path) == []


def test_torn_last_record_is_skipped_and_the_earlier_ones_replay(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(4):
        spool.append(batch(i, n=50))
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as f:  # the crash hit between write and fsync: half a record
        f.truncate(size - 600)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    out = drain(reopened)
    assert len(out) == 3 and all(same(a, batch(i, n=50)) for i, a in enumerate(out))


def test_torn_header_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(batch(0))
    (path,) = segments(tmp_path)
    with path.open("ab") as f:
        f.write(b"UWS1\x10")
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    assert [int(b.slot[0]) for b in drain(reopened)] == [0]


@pytest.mark.parametrize("where", ["payload", "length", "magic"])
def test_corrupt_last_record_is_skipped(tmp_path: Path, where: str) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(batch(i))
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    record = len(data) // 3
    at = {"payload": len(data) - 5, "length": 2 * record + 6, "magic": 2 * record}[where]
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    assert [int(b.slot[0]) for b in drain(reopened)] == [0, 10]


def test_a_corrupt_record_in_the_middle_is_skipped_and_the_rest_replays(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(batch(i))
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3 + 20] ^= 0xFF  # inside the second record's payload
    path.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    assert [int(b.slot[0]) for b in drain(reopened)] == [0, 20]


def test_a_segment_of_garbage_only_is_removed(tmp_path: Path) -> None:
    (tmp_path / "seg-000000000007.spool").write_bytes(b"\x00" * 100)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.corrupt_records_skipped == 1 and len(spool) == 0 and segments(tmp_path) == []
    spool.append(batch(1))
    assert segments(tmp_path)[0].name == "seg-000000000008.spool"


def test_size_limit_raises_spool_full_until_records_are_consumed(tmp_path: Path) -> None:
    one = len(encode_batch(batch(0))) + 12
    spool = Spool(tmp_path, max_bytes=3 * one, segment_bytes=one)
    for i in range(3):
        spool.append(batch(i))
    with pytest.raises(SpoolFull):
        spool.append(batch(3))
    assert len(spool) == 3 and spool.size_bytes == 3 * one
    spool.consume(spool.peek())  # type: ignore[arg-type]
    spool.append(batch(3))
    assert [int(b.slot[0]) for b in drain(spool)] == [10, 20, 30]


def test_consume_must_follow_peek(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(batch(0))
    first = spool.peek()
    assert first is not None
    spool.consume(first)
    spool.append(batch(1))
    spool.append(batch(2))
    stale = spool.peek()
    assert stale is not None
    spool.consume(stale)
    with pytest.raises(ValueError):
        spool.consume(stale)


def test_a_checksummed_but_undecodable_record_is_skipped_on_replay(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(batch(0))
    (path,) = segments(tmp_path)
    payload = struct.pack("<Q", 5) + b"\x00" * 8  # claims 5 readings, holds none
    with path.open("ab") as f:
        f.write(struct.pack("<4sII", MAGIC, len(payload), zlib.crc32(payload)) + payload)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.append(batch(2))
    assert len(reopened) == 3 and reopened.corrupt_records_skipped == 0
    assert [int(b.slot[0]) for b in drain(reopened)] == [0, 20]
    assert reopened.corrupt_records_skipped == 1 and reopened.size_bytes == 0
    assert segments(tmp_path) == []
