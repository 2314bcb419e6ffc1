"""Every reading a test's InfluxDB database holds, keyed by where it is stored."""

from __future__ import annotations

from ingest.timeseries.client import InfluxClient

Where = tuple[str, str, str, int]  # measurement, device_id tag, field (metric), ts_ms
_NOT_FIELDS = ("time", "device_id", "district", "grid")


async def stored_readings(influx: InfluxClient) -> dict[Where, float]:
    """(measurement, device_id, metric, ts_ms) -> value, over every measurement."""
    out: dict[Where, float] = {}
    for series in await influx.query('SELECT * FROM /.*/ GROUP BY "device_id"'):
        columns = series["columns"]
        for row in series["values"]:
            for column, value in zip(columns, row, strict=True):
                if column not in _NOT_FIELDS and value is not None:
                    out[(series["name"], series["tags"]["device_id"], column, row[0])] = value
    return out
