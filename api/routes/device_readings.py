"""A device's readings from InfluxDB: the newest value of each metric, and one metric's history.

Every role may read. The device comes from the registry (404 when unknown), the values
from InfluxDB (502 when it fails, `api.problems`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from api.clock import Instant
from api.deps import Caller, CatalogueDep, InfluxDep, KnownDevice
from api.query import TIME, alias_of, time_range
from api.routes.devices import NOT_FOUND
from api.schemas.devices import LatestReading, LatestReadings, Readings
from api.schemas.problems import Invalid, Problem
from devices.clock import now_ms
from ingest.timeseries.history import latest_values, series_history
from ingest.timeseries.influxql import valid_every

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
HOUR_MS = 3_600_000
INFLUX_MIN_MS, INFLUX_MAX_MS = -(2**63) // 10**6 + 1, (2**63 - 1) // 10**6  # int64 nanoseconds


@router.get(
    "/{device_id}/latest", summary="The newest stored value of each of a device's metrics",
    responses={**NOT_FOUND, 502: {"model": Problem, "description": "InfluxDB failed"}},
)
async def latest_readings(
    _: Caller, device: KnownDevice, catalogue: CatalogueDep, influx: InfluxDep
) -> LatestReadings:
    metrics = catalogue[device.type].metrics
    found = await latest_values(influx, measurement=device.type, device_id=device.id,
                                metrics=metrics)
    readings = [LatestReading(metric=latest.metric, unit=metrics[latest.metric].unit,
                              ts_ms=latest.ts_ms, value=latest.value) for latest in found]
    return LatestReadings(device_id=device.id, readings=readings)


@router.get(
    "/{device_id}/readings",
    summary="A device's readings of one metric, raw or aggregated, from InfluxDB",
    response_model=Readings,
    responses={**NOT_FOUND, 422: {"model": Invalid, "description": "bad metric, range, interval"},
               502: {"model": Problem, "description": "InfluxDB failed"}},
)
async def get_readings(
    _: Caller,
    device: KnownDevice,
    catalogue: CatalogueDep,
    influx: InfluxDep,
    metric: Annotated[str, Query(description="metric name of the device's type")],
    since: Annotated[Instant | None, Query(description=f"{TIME}; default until - 1 h")] = None,
    until: Annotated[Instant | None, Query(description=f"{TIME}; default now")] = None,
    start: Annotated[Instant | None, alias_of("since")] = None,
    end: Annotated[Instant | None, alias_of("until")] = None,
    every: Annotated[str | None, Query(description="aggregate over windows, e.g. 1m")] = None,
    aggregate: Literal["mean", "min", "max", "median", "sum", "count", "last", "first"] = "mean",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    device_type = catalogue[device.type]
    if metric not in device_type.metrics:
        known = ", ".join(device_type.metrics)
        raise HTTPException(422, f"{device.type} has no metric {metric!r}; known: {known}")
    if every is not None and not valid_every(every):
        raise HTTPException(422, f"invalid interval {every!r}: use e.g. 30s, 5m, 1h, 1d")
    since_ms, until_ms = time_range(("since", since, "start", start), ("until", until, "end", end))
    end_ms = now_ms() if until_ms is None else until_ms
    start_ms = end_ms - HOUR_MS if since_ms is None else since_ms
    if start_ms >= end_ms:
        raise HTTPException(422, "since must be before until")
    if not INFLUX_MIN_MS <= start_ms < end_ms <= INFLUX_MAX_MS:
        raise HTTPException(422, "since and until must lie within 1677-09-21 .. 2262-04-11 "
                                 "(what InfluxDB can store)")
    history = await series_history(
        influx, measurement=device.type, device_id=device.id, metric=metric,
        start_ms=start_ms, end_ms=end_ms, every=every, aggregate=aggregate, limit=limit,
    )
    body = Readings.body(
        history.ts_ms, history.value, device_id=device.id, metric=metric,
        unit=device_type.metrics[metric].unit, start_ms=start_ms, end_ms=end_ms, every=every,
        aggregate=aggregate if every else None,
    )
    return Response(body, media_type="application/json")
