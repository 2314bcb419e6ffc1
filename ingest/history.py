"""Reading one series' stored history back from InfluxDB (raw or aggregated)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from devices.batch import Float64Array, Int64Array
from ingest.influx import InfluxClient, quote_ident

_EVERY = re.compile(r"^[1-9][0-9]{0,5}(s|m|h|d)$")
AGGREGATES = frozenset({"mean", "min", "max", "median", "sum", "count", "last", "first"})


@dataclass(frozen=True)
class History:
    ts_ms: Int64Array
    value: Float64Array


def valid_every(every: str) -> bool:
    """An InfluxQL GROUP BY time() interval we accept: a positive count and s/m/h/d."""
    return bool(_EVERY.match(every))


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
    if every is not None and not valid_every(every):
        raise ValueError(f"invalid interval {every!r}: use e.g. 30s, 5m, 1h, 1d")
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}")
    field = quote_ident(metric)
    select = f"{aggregate}({field})" if every else field
    q = (
        f"SELECT {select} FROM {quote_ident(measurement)} "
        f"WHERE device_id = '{_quote_string(device_id)}' "
        f"AND time >= {start_ms}ms AND time < {end_ms}ms"
    )
    if every:
        q += f" GROUP BY time({every}) fill(none)"
    q += f" LIMIT {int(limit)}"
    series = await client.query(q)
    rows = [row for s in series for row in s.get("values", []) if row[1] is not None]
    return History(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.float64),
    )


def _quote_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
