"""Reading batches → InfluxDB line protocol, vectorized: the only producer of those bytes.

One line per (device, timestamp): `measurement,tags field=value,... ts_ms`, with
measurement = device type, tags = device_id, district, grid (empty ones omitted) and
one float field per metric: a `SeriesName` per series. The per-slot `measurement,tags `
prefix and `metric=` field key are built once per registry snapshot (or per series
table), so encoding a batch is sorting plus numpy byte concatenation; values use
`repr(float)` (shortest round-trip), so what is read back equals what was written.
Spool replay writes through the same encoder, built from the series table its record
carries, so a reading goes where it was named when it was taken.

Names are escaped by `escape_measurement` (the measurement) and `escape_key` (tag keys,
tag values, field keys). Line protocol 1.x cannot carry everything: a line break, tab or
NUL in a name becomes a space (InfluxDB would split the line or strip them); a backslash
before a character that needs escaping (or ending the name) becomes U+FFFD, since there
is no escape for a backslash and it would escape what follows; so does a leading `#` of
a measurement, which would turn the line into a comment. Everything else is stored as is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from devices.batch import Int64Array, ReadingBatch
from devices.registry import Registry

_TAGS = ("device_id", "district", "grid")  # sorted by key, as InfluxDB prefers
REPLACEMENT = "\ufffd"  # stands in for what line protocol cannot carry
_TO_SPACE = str.maketrans("\r\n\t\0", "    ")
_STRANDED_BACKSLASH = re.compile(r'\\(?=[ ,="]|\Z)')


def escape_measurement(name: str) -> str:
    """A measurement name: commas and spaces escaped."""
    carried = _carriable(name)
    if carried.startswith("#"):
        carried = REPLACEMENT + carried[1:]
    return carried.replace(",", r"\,").replace(" ", r"\ ")


def escape_key(name: str) -> str:
    """A tag key, tag value or field key: commas, equals signs and spaces escaped."""
    return _carriable(name).replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _carriable(text: str) -> str:
    return _STRANDED_BACKSLASH.sub(REPLACEMENT, text.translate(_TO_SPACE))


@dataclass(frozen=True)
class Lines:
    """An encoded batch: the body, where each line starts, and which line holds each reading."""

    body: bytes
    offsets: Int64Array  # n_lines + 1 byte offsets into body
    line_of_reading: Int64Array  # per reading of the source batch

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def chunk(self, lo: int, hi: int) -> bytes:
        """Lines [lo, hi) as one writable body."""
        return self.body[self.offsets[lo] : self.offsets[hi]]

    def readings(self, lo: int, hi: int) -> npt.NDArray[np.intp]:
        """Indices (into the source batch) of the readings on lines [lo, hi)."""
        return np.flatnonzero((self.line_of_reading >= lo) & (self.line_of_reading < hi))


@dataclass(frozen=True)
class SeriesName:
    """Where one series is stored: measurement, tags (sorted by key) and field key."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    metric: str

    @property
    def device_id(self) -> str:
        return dict(self.tags).get("device_id", "")

    def line_prefix(self) -> bytes:
        """`measurement,tag=value,... ` as it starts this series' lines."""
        tags = "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in self.tags)
        return f"{escape_measurement(self.measurement)}{tags} ".encode()


def series_name(registry: Registry, slot: int) -> SeriesName:
    """The name a slot's readings are stored under now: its device's type and tags."""
    series = registry.series(slot)
    device = registry.devices[series.device_id]
    values = {"device_id": device.id, "district": device.district, "grid": device.grid}
    tags = tuple((key, str(values[key])) for key in _TAGS if values[key])
    return SeriesName(device.type, tags, series.metric)


class LineEncoder:
    """Encodes batches whose slots index a registry snapshot's series, or a series table
    (a spool record's): a slot of the table is written under `table[slot]`."""

    def __init__(self, source: Registry | Sequence[SeriesName]) -> None:
        if isinstance(source, Registry):
            self.registry: Registry | None = source
            names = [series_name(source, slot) for slot in range(source.n_series)]
        else:
            self.registry, names = None, list(source)
        self.n_series = len(names)
        prefixes = [name.line_prefix() for name in names]
        groups: dict[bytes, int] = {}  # a device's series share one line per timestamp
        self._device = np.array([groups.setdefault(p, len(groups)) for p in prefixes],
                                dtype=np.int64)
        self._prefix = np.array(prefixes or [b""], dtype=np.bytes_)
        self._field = np.array([(escape_key(n.metric) + "=").encode() for n in names] or [b""],
                               dtype=np.bytes_)

    def covers(self, registry: Registry) -> bool:
        """Whether this encoder was built from `registry` as it is now."""
        return registry is self.registry and registry.n_series == self.n_series

    def encode(self, batch: ReadingBatch) -> Lines:
        n = len(batch)
        if n == 0:
            return Lines(b"", np.zeros(1, np.int64), np.empty(0, np.int64))
        if batch.slot.min() < 0 or batch.slot.max() >= self.n_series:
            raise ValueError("batch has slots this encoder's series do not include")
        device = self._device[batch.slot]
        order = np.lexsort((batch.slot, batch.ts_ms, device))  # stable: ties keep batch order
        slot, ts_ms, device = batch.slot[order], batch.ts_ms[order], device[order]

        new_line = np.ones(n, dtype=bool)
        new_line[1:] = (device[1:] != device[:-1]) | (ts_ms[1:] != ts_ms[:-1])
        line_sorted = np.cumsum(new_line) - 1
        line_of_reading = np.empty(n, dtype=np.int64)
        line_of_reading[order] = line_sorted

        # The same slot twice at one timestamp: the later reading wins, as a rewrite would.
        keep = np.ones(n, dtype=bool)
        keep[:-1] = (slot[:-1] != slot[1:]) | (ts_ms[:-1] != ts_ms[1:])
        slot, ts_ms, device = slot[keep], ts_ms[keep], device[keep]
        values = batch.value[order][keep]
        first = np.ones(len(slot), dtype=bool)
        first[1:] = (device[1:] != device[:-1]) | (ts_ms[1:] != ts_ms[:-1])
        last = np.ones(len(slot), dtype=bool)
        last[:-1] = first[1:]

        head = np.where(first, self._prefix[slot], b",")
        text = np.array(list(map(float.__repr__, values.tolist())), dtype=np.bytes_)
        piece = np.strings.add(np.strings.add(head, self._field[slot]), text)
        tail = np.zeros(len(slot), dtype="S22")
        tail[last] = np.strings.add(np.strings.add(b" ", ts_ms[last].astype("S20")), b"\n")
        piece = np.strings.add(piece, tail)

        ends = np.cumsum(np.strings.str_len(piece))[last]
        offsets = np.concatenate(([0], ends)).astype(np.int64)
        return Lines(b"".join(piece.tolist()), offsets, line_of_reading)
