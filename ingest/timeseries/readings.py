"""Reading many series back from InfluxDB as `ReadingBatch`es.

`stored_readings` is what a backtest replays: the range is read in time chunks, one query per
device type and chunk with every device of that type grouped by ``device_id``, so a long range
is never held in memory at once. `last_readings` is what a restarted engine starts from: the
newest stored reading of every series, one query per (type, metric) paging through devices.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from ingest.timeseries import influxql
from ingest.timeseries.client import InfluxClient

MAX_DEVICE_FILTER = 100  # up to this many devices of a type are named in the query's WHERE
LAST_PAGE_DEVICES = 10_000  # devices per query of `last_readings` (bounds one response)


async def stored_readings(
    influx: InfluxClient, registry: Registry, slots: np.ndarray, start_ms: int, end_ms: int,
    chunk_ms: int,
) -> AsyncIterator[ReadingBatch]:
    """The stored readings of ``slots`` in ``[start_ms, end_ms)``, one batch per time chunk.

    The devices of a type are named in the query when they are few; otherwise the type's
    other devices are read too and dropped here.
    """
    wanted: dict[str, dict[str, set[str]]] = {}  # type -> metric -> device ids
    for slot in slots.tolist():
        series = registry.series(slot)
        kind = registry.devices[series.device_id].type
        wanted.setdefault(kind, {}).setdefault(series.metric, set()).add(series.device_id)
    for lo in range(start_ms, end_ms, chunk_ms):
        hi = min(lo + chunk_ms, end_ms)
        parts = []
        for kind, metrics in sorted(wanted.items()):
            devices = sorted(set().union(*metrics.values()))
            named = devices if len(devices) <= MAX_DEVICE_FILTER else None
            found = await influx.query(influxql.readings(kind, sorted(metrics), named, lo, hi))
            parts += _batches(found, registry, metrics)
        yield ReadingBatch.concat(parts)


def _batches(found: list[dict[str, Any]], registry: Registry,
             metrics: dict[str, set[str]]) -> list[ReadingBatch]:
    """Readings of the wanted (device, metric) series in a query's grouped result."""
    out = []
    for series in found:
        device_id = series.get("tags", {}).get("device_id")
        rows = series.get("values") or []
        if not rows:
            continue
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        for col, metric in enumerate(series["columns"][1:], start=1):
            slot = registry.slot(device_id, metric)
            if slot is None or device_id not in metrics.get(metric, ()):
                continue
            value = np.array([r[col] for r in rows], dtype=object)
            held = np.array([v is not None for v in value], dtype=bool)
            out.append(ReadingBatch.from_columns(np.full(int(held.sum()), slot), ts[held],
                                                 value[held].astype(np.float64)))
    return out


async def last_readings(influx: InfluxClient, registry: Registry, *,
                        page_devices: int = LAST_PAGE_DEVICES) -> ReadingBatch:
    """The newest stored reading of every series of ``registry`` that has one (one per slot).

    Points are looked up under the device's current type: a re-typed device's old readings
    belong to other series.
    """
    slots, ts, values = [], [], []
    kinds = sorted({d.type for d in registry.devices.values()})
    for kind in kinds:
        for metric in registry.catalogue[kind].metrics:
            offset = 0
            while True:
                q = influxql.last_per_device(kind, metric, page_devices, offset)
                found = await influx.query(q)
                for series in found:
                    device_id = series.get("tags", {}).get("device_id")
                    device = registry.get(device_id)
                    slot = registry.slot(device_id, metric)
                    rows = [r for r in series.get("values") or [] if r[1] is not None]
                    if slot is None or device is None or device.type != kind or not rows:
                        continue
                    slots.append(slot)
                    ts.append(int(rows[0][0]))
                    values.append(float(rows[0][1]))
                if len(found) < page_devices:
                    break
                offset += page_devices
    return ReadingBatch.from_columns(slots, ts, values)
