"""A durable local spool of reading batches, for when InfluxDB cannot take them.

Append-only segment files (`seg-<n>.spool`) of records: a 12-byte header (magic, which
gives the record's format version, payload length, CRC32 of the payload) and the
payload, whose format `ingest.spool_record` owns. Each append is fsynced before it
returns, so the caller may acknowledge.

Replay reads the oldest record first; `consume` marks it stored, and a segment is
deleted once all its records were. Progress inside a segment is not persisted: after a
crash the segment replays from its start again, which is harmless (rewriting a point
is idempotent). At open, every segment is scanned: a record whose checksum fails is
skipped, and a torn tail (a header or payload cut short by a crash between write and
fsync, or an unreadable length) ends that segment's scan; each counts once in
`corrupt_records_skipped` and is never replayed. Appends after open go to a new
segment, so nothing is ever written after a torn tail. Records of every known version
are kept and handed out with their version: which ones can still be replayed is the
reader's decision, not a reason to drop them here.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from devices.private_paths import private_dir, private_file
from ingest.errors import IngestError
from ingest.spool_record import VERSION

log = logging.getLogger(__name__)

MAGICS = {b"UWS1": 1, b"UWS2": 2}  # magic -> record format version
MAGIC = next(magic for magic, version in MAGICS.items() if version == VERSION)
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32(payload)
_MAX_PAYLOAD = 1 << 30


class SpoolFull(IngestError):
    """Appending would take the spool past its size limit."""


@dataclass
class _Segment:
    path: Path
    size: int
    records: deque[tuple[int, int]] = field(default_factory=deque)  # (offset, length)


@dataclass(frozen=True)
class SpooledRecord:
    """The oldest unreplayed record: pass it back to `Spool.consume` once it is dealt with."""

    record: tuple[Path, int]
    version: int
    payload: bytes

    @property
    def where(self) -> str:
        return f"{self.record[0].name} at byte {self.record[1]}"


class Spool:
    """The segments in one folder; thread-safe (appends may run in a worker thread)."""

    def __init__(self, directory: Path, max_bytes: int, *, segment_bytes: int = 64 << 20) -> None:
        if max_bytes <= 0 or segment_bytes <= 0:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory, self.max_bytes, self.segment_bytes = directory, max_bytes, segment_bytes
        self.corrupt_records_skipped = 0
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._writable: _Segment | None = None  # created by this process: appends go here
        self._size_bytes = self._n_records = 0  # kept as plain ints: read without the lock
        private_dir(directory)
        self._next_id = 0
        for path in sorted(directory.glob("seg-*.spool")):
            self._next_id = int(path.stem.removeprefix("seg-")) + 1
            self._recover(path)

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def n_records(self) -> int:
        return self._n_records

    def __len__(self) -> int:
        return self.n_records

    def append(self, payload: bytes) -> None:
        """Write one record of the current version and fsync it; `SpoolFull` if it does not
        fit, `OSError` if the disk failed (the record is then not durable)."""
        record = _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self.size_bytes + len(record) > self.max_bytes:
                raise SpoolFull(f"spool at {self.size_bytes} of {self.max_bytes} bytes cannot "
                                f"take {len(record)} more")
            segment = self._writable
            if segment is None or segment.size >= self.segment_bytes:
                segment = self._new_segment()
            try:
                with segment.path.open("ab") as f:
                    f.write(record)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:  # maybe half written: append elsewhere; reopening skips the tail
                self._writable = None
                raise
            segment.records.append((segment.size, len(record)))
            segment.size += len(record)
            self._size_bytes += len(record)
            self._n_records += 1

    def peek(self) -> SpooledRecord | None:
        """The oldest record not yet consumed, or None if the spool is empty."""
        with self._lock:
            for segment in self._segments:
                if segment.records:
                    offset, length = segment.records[0]
                    with segment.path.open("rb") as f:
                        f.seek(offset)
                        data = f.read(length)
                    return SpooledRecord((segment.path, offset), MAGICS[data[:4]],
                                         data[_HEADER.size:])
            return None

    def consume(self, spooled: SpooledRecord) -> None:
        """Mark the record returned by `peek` as stored; drop emptied segments."""
        path, offset = spooled.record
        with self._lock:
            segment = next((s for s in self._segments if s.path == path), None)
            if segment is None or not segment.records or segment.records[0][0] != offset:
                raise ValueError("consume() must be given the record peek() returned")
            segment.records.popleft()
            self._n_records -= 1
            while self._segments and not self._segments[0].records:
                done = self._segments.popleft()
                done.path.unlink()
                self._size_bytes -= done.size
                if done is self._writable:
                    self._writable = None

    def _new_segment(self) -> _Segment:
        path = self.directory / f"seg-{self._next_id:012d}.spool"
        self._next_id += 1
        private_file(path)
        dir_fd = os.open(self.directory, os.O_RDONLY)  # make the new name itself durable
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._writable = _Segment(path, 0)
        self._segments.append(self._writable)
        return self._writable

    def _recover(self, path: Path) -> None:
        data = path.read_bytes()
        segment, offset = _Segment(path, len(data)), 0
        while offset < len(data):
            if len(data) - offset < _HEADER.size:
                self._skip(path, offset, "torn header")
                break
            magic, length, crc = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if magic not in MAGICS or length > _MAX_PAYLOAD or end > len(data):
                self._skip(path, offset, "torn or unreadable record")
                break
            payload = data[offset + _HEADER.size:end]
            if zlib.crc32(payload) != crc:
                self._skip(path, offset, "checksum mismatch")
            else:
                segment.records.append((offset, end - offset))
            offset = end
        if segment.records:
            self._segments.append(segment)
            self._size_bytes += segment.size
            self._n_records += len(segment.records)
        else:
            path.unlink()

    def _skip(self, path: Path, offset: int, why: str) -> None:
        self.corrupt_records_skipped += 1
        log.warning("spool %s: skipping a corrupt record at byte %d (%s)", path.name, offset, why)
