"""The durable spool on its own: order, reopening, crash and corruption recovery, size limit.

Payloads are opaque here (their format is `ingest.spool_record`'s, tested beside it)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from ingest.spool import MAGIC, MAGICS, Spool, SpoolFull


def payload(i: int, n: int = 3) -> bytes:
    """A payload as large as a record of `n` readings, told apart by its first byte."""
    return bytes([i]) + b"\x07" * (7 + 24 * n)


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (spooled := spool.peek()) is not None:
        out.append(spooled.payload)
        spool.consume(spooled)
    return out


def ids(payloads: list[bytes]) -> list[int]:
    return [p[0] for p in payloads]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.spool"))


def test_replays_in_order_across_segments_and_deletes_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=200)
    for i in range(10):
        spool.append(payload(i))
    assert len(spool) == 10 and len(segments(tmp_path)) > 2
    out = drain(spool)
    assert ids(out) == list(range(10))
    assert out == [payload(i) for i in range(10)]
    assert segments(tmp_path) == [] and spool.size_bytes == 0 and spool.peek() is None


def test_reopening_keeps_unconsumed_records_and_appends_after_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(payload(i))
    spool.consume(spool.peek())  # type: ignore[arg-type]
    # not deleted yet (the segment still has records): replay resumes at its start
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert len(reopened) == 3
    assert reopened.size_bytes == sum(p.stat().st_size for p in segments(tmp_path)) > 0
    reopened.append(payload(3))
    assert ids(drain(reopened)) == [0, 1, 2, 3]
    assert reopened.corrupt_records_skipped == 0 and segments(tmp_path) == []


def test_torn_last_record_is_skipped_and_the_earlier_ones_replay(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(4):
        spool.append(payload(i, n=50))
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as f:  # the crash hit between write and fsync: half a record
        f.truncate(size - 600)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    out = drain(reopened)
    assert out == [payload(i, n=50) for i in range(3)]


def test_torn_header_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payload(0))
    (path,) = segments(tmp_path)
    with path.open("ab") as f:
        f.write(b"UWS1\x10")
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    assert ids(drain(reopened)) == [0]


@pytest.mark.parametrize("where", ["payload", "length", "magic"])
def test_corrupt_last_record_is_skipped(tmp_path: Path, where: str) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(payload(i))
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    record = len(data) // 3
    at = {"payload": len(data) - 5, "length": 2 * record + 6, "magic": 2 * record}[where]
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    assert ids(drain(reopened)) == [0, 1]


def test_a_corrupt_record_in_the_middle_is_skipped_and_the_rest_replays(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(payload(i))
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3 + 20] ^= 0xFF  # inside the second record's payload
    path.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.corrupt_records_skipped == 1
    assert ids(drain(reopened)) == [0, 2]


def test_a_segment_of_garbage_only_is_removed(tmp_path: Path) -> None:
    (tmp_path / "seg-000000000007.spool").write_bytes(b"\x00" * 100)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.corrupt_records_skipped == 1 and len(spool) == 0 and segments(tmp_path) == []
    spool.append(payload(1))
    assert segments(tmp_path)[0].name == "seg-000000000008.spool"


def test_size_limit_raises_spool_full_until_records_are_consumed(tmp_path: Path) -> None:
    one = len(payload(0)) + 12
    spool = Spool(tmp_path, max_bytes=3 * one, segment_bytes=one)
    for i in range(3):
        spool.append(payload(i))
    with pytest.raises(SpoolFull):
        spool.append(payload(3))
    assert len(spool) == 3 and spool.size_bytes == 3 * one
    spool.consume(spool.peek())  # type: ignore[arg-type]
    spool.append(payload(3))
    assert ids(drain(spool)) == [1, 2, 3]


def test_consume_must_follow_peek(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payload(0))
    first = spool.peek()
    assert first is not None
    spool.consume(first)
    spool.append(payload(1))
    spool.append(payload(2))
    stale = spool.peek()
    assert stale is not None
    spool.consume(stale)
    with pytest.raises(ValueError):
        spool.consume(stale)


def test_records_of_an_earlier_version_are_kept_and_handed_out_with_it(tmp_path: Path) -> None:
    """Whether a record can be replayed is the reader's call: the spool drops none."""
    (old,) = [magic for magic, version in MAGICS.items() if version == 1]
    assert MAGICS[MAGIC] == 2
    body = struct.pack("<Q", 1) + b"\x00" * 24
    (tmp_path / "seg-000000000000.spool").write_bytes(
        struct.pack("<4sII", old, len(body), zlib.crc32(body)) + body)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payload(5))
    assert len(spool) == 2 and spool.corrupt_records_skipped == 0
    first = spool.peek()
    assert first is not None and (first.version, first.payload) == (1, body)
    assert first.where == "seg-000000000000.spool at byte 0"
    spool.consume(first)
    second = spool.peek()
    assert second is not None and (second.version, second.payload) == (2, payload(5))


def test_the_spool_folder_and_its_segments_are_owner_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "state" / "spool", max_bytes=1 << 20, segment_bytes=64)
    for i in range(4):
        spool.append(b"reading %d " % i * 8)
    segments = sorted(spool.directory.glob("seg-*.spool"))
    assert len(segments) > 1
    assert [p.stat().st_mode & 0o777 for p in (spool.directory, spool.directory.parent)] == [
        0o700, 0o700]
    assert {p.stat().st_mode & 0o777 for p in segments} == {0o600}
