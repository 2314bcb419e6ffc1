"""Where stored readings go: the `Sink` contract and its InfluxDB implementation.

A sink either stores a batch (returning the points it refused for good, which the
pipeline dead-letters) or raises `InfluxError` for the pipeline to retry. The durable
spool (`ingest.spooling_sink.SpoolingSink`) is a `Sink` wrapping another one: it takes
the batch to disk when the inner sink fails, and raises a retryable error only when
the spool itself is full, so the pipeline holds the batch and the broker its messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from devices.batch import ReadingBatch
from devices.registry import Registry
from ingest.errors import InfluxError
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.lineprotocol import LineEncoder, Lines

# Statuses that blame the points, not the server or our configuration: split the batch
# to find them. 401/403/404 (credentials, database) would condemn every point, so those
# propagate like a retryable error and hold the batch until someone fixes the setup.
_POINT_ERRORS = frozenset({400, 413, 422})


@dataclass(frozen=True)
class RefusedPoint:
    """One line the store refused for good, and the readings of the batch it holds."""

    index: npt.NDArray[np.intp]
    line: bytes
    detail: str


class Sink(Protocol):
    async def write(self, batch: ReadingBatch) -> list[RefusedPoint]: ...


class InfluxSink:
    """Writes batches as line protocol; isolates refused points by bisection.

    InfluxDB 1.x stores the good points of a batch that had a bad one ("partial
    write"), and rewriting a point is idempotent, so retrying halves is safe.
    """

    def __init__(self, client: InfluxClient, registry: Callable[[], Registry]) -> None:
        self.client = client
        self._registry = registry
        self._encoder: LineEncoder | None = None

    async def write(
        self, batch: ReadingBatch, encoder: LineEncoder | None = None
    ) -> list[RefusedPoint]:
        """Store `batch`, its slots naming the registry's series or, given `encoder`, that
        encoder's (a spool record's series table)."""
        lines = (encoder or self._encoder_for(self._registry())).encode(batch)
        if not lines:
            return []
        return [
            RefusedPoint(lines.readings(lo, lo + 1), lines.chunk(lo, lo + 1), detail)
            for lo, detail in await self._write_isolating(lines, 0, len(lines))
        ]

    def _encoder_for(self, registry: Registry) -> LineEncoder:
        if self._encoder is None or not self._encoder.covers(registry):
            self._encoder = LineEncoder(registry)
        return self._encoder

    async def _write_isolating(self, lines: Lines, lo: int, hi: int) -> list[tuple[int, str]]:
        """Write lines [lo, hi); return (line, detail) of those refused for good."""
        try:
            await self.client.write(lines.chunk(lo, hi), precision="ms")
        except InfluxError as exc:
            if exc.retryable or exc.status not in _POINT_ERRORS:
                raise
            if hi - lo == 1:
                return [(lo, exc.detail)]
            mid = (lo + hi) // 2
            return await self._write_isolating(lines, lo, mid) + await self._write_isolating(
                lines, mid, hi
            )
        return []
