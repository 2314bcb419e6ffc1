"""What one spool record holds: a batch of readings, named so a later process can place them.

Version 2: a `<QI` head (readings n, table length t); the series table, t bytes of JSON
``[[measurement, metric, {tag: value, ...}], ...]`` with one entry per series of the batch,
named as `lineprotocol.series_name` named it when the batch was spooled; then three
little-endian columns: index into the table (int32), ts_ms (int64), value (float64).
Replay writes each reading under its own entry, so devices added, retired, re-typed or
deleted in between change nothing about where it goes: no registry position (slot) is
trusted across processes. A retired or deleted device's readings from before are still
real readings, and are stored.

Version 1 records held registry slots only. Those belong to the registry of the process
that wrote them and, after a restart, may name other series; they are not replayed but
raise `Unplaceable`, for the caller to dead-letter with the reason.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from ingest.timeseries.lineprotocol import SeriesName, series_name

VERSION = 2
_HEAD = struct.Struct("<QI")  # readings, series table bytes
_V1_COUNT = struct.Struct("<Q")
_INDEX, _INT, _FLOAT = np.dtype("<i4"), np.dtype("<i8"), np.dtype("<f8")
_READING_BYTES = _INDEX.itemsize + _INT.itemsize + _FLOAT.itemsize


class Unplaceable(ValueError):
    """A record whose readings cannot be put under the series they were taken for."""

    def __init__(self, detail: str, n_readings: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.n_readings = detail, n_readings


@dataclass(frozen=True)
class SpoolRecord:
    """A decoded record: `batch.slot` indexes `series`, not any registry."""

    series: tuple[SeriesName, ...]
    batch: ReadingBatch

    def device_of(self, reading: int) -> str:
        return self.series[int(self.batch.slot[reading])].device_id


class RecordEncoder:
    """Builds version-2 payloads. A slot's table entry is serialized once per registry
    snapshot, so a record costs a `np.unique`, a join and the columns' bytes."""

    def __init__(self) -> None:
        self._registry: Registry | None = None
        self._n_series = 0
        self._entries: dict[int, bytes] = {}

    def encode(self, registry: Registry, batch: ReadingBatch) -> bytes:
        if registry is not self._registry or registry.n_series != self._n_series:
            self._registry, self._n_series, self._entries = registry, registry.n_series, {}
        slots, index = np.unique(batch.slot, return_inverse=True)
        table = b"[" + b",".join(self._entry(registry, s) for s in slots.tolist()) + b"]"
        return b"".join((
            _HEAD.pack(len(batch), len(table)),
            table,
            index.astype(_INDEX).tobytes(),
            batch.ts_ms.astype(_INT, copy=False).tobytes(),
            batch.value.astype(_FLOAT, copy=False).tobytes(),
        ))

    def _entry(self, registry: Registry, slot: int) -> bytes:
        entry = self._entries.get(slot)
        if entry is None:
            name = series_name(registry, slot)
            entry = self._entries[slot] = json.dumps(
                [name.measurement, name.metric, dict(name.tags)], separators=(",", ":")
            ).encode()
        return entry


def decode_record(version: int, payload: bytes) -> SpoolRecord:
    """The record in `payload`, or `Unplaceable` saying why its readings cannot be placed."""
    if version == 1:
        n = _V1_COUNT.unpack_from(payload)[0] if len(payload) >= _V1_COUNT.size else None
        raise Unplaceable("a version-1 spool record names series by the registry slots of the "
                          "process that wrote it; after a restart they may name other series, "
                          "so it is not replayed", n)
    if version != VERSION:
        raise Unplaceable(f"unknown spool record version {version}")
    try:
        n, table_bytes = _HEAD.unpack_from(payload)
        at = _HEAD.size + table_bytes
        if len(payload) != at + _READING_BYTES * n:
            raise ValueError(f"{len(payload)} bytes cannot hold {n} readings and the table")
        series = tuple(_series(entry) for entry in json.loads(payload[_HEAD.size:at]))
        index = np.frombuffer(payload, _INDEX, n, at).astype(np.int64)
        if n and (index.min() < 0 or index.max() >= len(series)):
            raise ValueError("a reading's series index is outside the record's table")
        at += _INDEX.itemsize * n
        batch = ReadingBatch(  # copies: native byte order, writable, independent of `payload`
            index,
            np.frombuffer(payload, _INT, n, at).astype(np.int64),
            np.frombuffer(payload, _FLOAT, n, at + _INT.itemsize * n).astype(np.float64),
        )
    except (ValueError, TypeError, struct.error) as exc:  # JSONDecodeError is a ValueError
        raise Unplaceable(f"undecodable spool record: {exc}") from exc
    return SpoolRecord(series, batch)


def _series(entry: object) -> SeriesName:
    match entry:
        case [str(measurement), str(metric), dict(tags)] if all(
            isinstance(v, str) for v in tags.values()
        ):
            return SeriesName(measurement, tuple(tags.items()), metric)
    raise ValueError(f"not a series table entry: {entry!r:.200}")
