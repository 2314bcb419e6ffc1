"""Reading one device's stored values back from InfluxDB: a metric's history (raw or
aggregated) and the newest value of each metric."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from devices.batch import Float64Array, Int64Array
from ingest.timeseries import influxql
from ingest.timeseries.client import InfluxClient


@dataclass(frozen=True)
class History:
    ts_ms: Int64Array
    value: Float64Array


@dataclass(frozen=True)
class Latest:
    """The newest stored value of one metric."""

    metric: str
    ts_ms: int
    value: float


async def series_history(
    client: InfluxClient,
    *,
    measurement: str,
    device_id: str,
    metric: str,
    start_ms: int,
    end_ms: int,
    every: str | None = None,
    aggregate: str = "mean",
    limit: int = 10_000,
) -> History:
    """One device's metric between start (inclusive) and end (exclusive).

    With `every` the values are `aggregate` over windows of that length
    (empty windows omitted); without it, the raw points, oldest first.
    """
    q = influxql.history(measurement, device_id, metric, start_ms, end_ms,
                         every=every, aggregate=aggregate, limit=limit)
    rows = [row for s in await client.query(q) for row in s.get("values", [])
            if row[1] is not None]
    return History(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.float64),
    )


async def latest_values(
    client: InfluxClient, *, measurement: str, device_id: str, metrics: Iterable[str]
) -> list[Latest]:
    """The newest value of each of `metrics` that has one, in the order given."""
    found = []
    for metric in metrics:  # one query each: several selectors in one would lose their times
        series = await client.query(influxql.latest(measurement, device_id, metric))
        rows = [row for s in series for row in s.get("values", []) if row[1] is not None]
        if rows:
            found.append(Latest(metric, int(rows[0][0]), float(rows[0][1])))
    return found
