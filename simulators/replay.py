"""Replay a recorded series (a CSV of `timestamp,value`, e.g. a Numenta Anomaly Benchmark
file) as one device's stream.

The recording keeps its spacing but is moved to start at `start_ms` (the platform refuses
readings older than a week), and is published `speed` times faster than it was recorded: at
speed > 1 run the platform with `clock = "readings"`.
"""

from __future__ import annotations

import asyncio
import csv
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from simulators.payloads import encode_json, topic
from simulators.publisher import Acks, PublishOptions, PublishSummary, connect


@dataclass(frozen=True)
class Series:
    ts_ms: np.ndarray  # int64, increasing
    values: np.ndarray  # float64

    def moved_to(self, start_ms: int) -> Series:
        return Series(self.ts_ms - self.ts_ms[0] + start_ms, self.values)


def read_series(path: Path) -> Series:
    """`timestamp,value` rows (a header first; naive timestamps are UTC); ValueError if bad."""
    stamps, values = [], []
    with path.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or len(header) < 2:
            raise ValueError(f"{path}: expected a header 'timestamp,value'")
        for n, row in enumerate(rows, start=2):
            try:
                when = datetime.fromisoformat(row[0])
                stamps.append(int((when if when.tzinfo else when.replace(tzinfo=UTC))
                                  .timestamp() * 1000))
                values.append(float(row[1]))
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{path} line {n}: {exc}") from exc
    ts = np.array(stamps, dtype=np.int64)
    if len(ts) == 0 or np.any(np.diff(ts) <= 0):
        raise ValueError(f"{path}: no rows, or timestamps not increasing")
    return Series(ts, np.array(values))


async def replay(series: Series, device_id: str, district: str, metric: str,
                 options: PublishOptions, speed: float) -> PublishSummary:
    """Publish each reading when its (moved) time comes, `speed` times faster than recorded."""
    if speed <= 0:
        raise ValueError("need speed > 0")
    client = await connect(options)
    try:
        acks, started = Acks(), time.monotonic()
        where = topic(options.topic_prefix, district, device_id)
        for ts, value in zip(series.ts_ms.tolist(), series.values.tolist(), strict=True):
            due_s = (ts - int(series.ts_ms[0])) / 1000 / speed
            while (wait_s := due_s - (time.monotonic() - started)) > 0 or (
                    len(acks.pending) >= options.max_inflight):
                await asyncio.sleep(min(max(wait_s, 0.001), options.tick_s))
                acks.sweep()
            acks.add(client.publish(where, encode_json(ts, {metric: value}), options.qos), 1)
            acks.sweep()
        deadline = time.monotonic() + options.drain_timeout_s
        while acks.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            acks.sweep()
        return acks.summary(1, time.monotonic() - started)
    finally:
        client.disconnect()
        client.loop_stop()
