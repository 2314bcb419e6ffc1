"""Devices: the registry and each device's readings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import ContextDep
from api.schemas import DevicePage, DevicePublic, Problem, ReadingPoint, Readings
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from ingest.history import series_history, valid_every

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such device"}
}


@router.get("", summary="List devices with filters and paging")
async def list_devices(
    context: ContextDep,
    type: Annotated[str | None, Query(description="device type")] = None,
    district: str | None = None,
    status: DeviceStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DevicePage:
    store = DeviceStore(context.sessions)
    devices, total = await store.list(
        type=type, district=district, status=status, limit=limit, offset=offset
    )
    return DevicePage(
        items=[DevicePublic.of(d) for d in devices], total=total, limit=limit, offset=offset
    )


@router.get("/{device_id}", summary="One device", responses=NOT_FOUND)
async def get_device(device_id: str, context: ContextDep) -> DevicePublic:
    return DevicePublic.of(await _device(context, device_id))


@router.get(
    "/{device_id}/readings",
    summary="A device's readings of one metric, raw or aggregated, from InfluxDB",
    responses={**NOT_FOUND, 422: {"description": "bad metric, time range or interval"}},
)
async def get_readings(
    device_id: str,
    context: ContextDep,
    metric: Annotated[str, Query(description="metric name of the device's type")],
    start: Annotated[datetime | None, Query(description="ISO 8601; default end - 1 h")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default now")] = None,
    every: Annotated[str | None, Query(description="aggregate over windows, e.g. 1m")] = None,
    aggregate: Literal["mean", "min", "max", "median", "sum", "count", "last", "first"] = "mean",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Readings:
    device = await _device(context, device_id)
    device_type = context.catalogue[device.type]
    if metric not in device_type.metrics:
        known = ", ".join(device_type.metrics)
        raise HTTPException(422, f"{device.type} has no metric {metric!r}; known: {known}")
    if every is not None and not valid_every(every):
        raise HTTPException(422, f"invalid interval {every!r}: use e.g. 30s, 5m, 1h, 1d")
    end_ms = _ms(end) if end else _now_ms()
    start_ms = _ms(start) if start else end_ms - int(timedelta(hours=1).total_seconds() * 1000)
    if start_ms >= end_ms:
        raise HTTPException(422, "start must be before end")
    history = await series_history(
        context.influx,
        measurement=device.type,
        device_id=device.id,
        metric=metric,
        start_ms=start_ms,
        end_ms=end_ms,
        every=every,
        aggregate=aggregate,
        limit=limit,
    )
    return Readings(
        device_id=device.id,
        metric=metric,
        unit=device_type.metrics[metric].unit,
        start_ms=start_ms,
        end_ms=end_ms,
        every=every,
        aggregate=aggregate if every else None,
        points=[
            ReadingPoint(ts_ms=int(t), value=float(v))
            for t, v in zip(history.ts_ms, history.value, strict=True)
        ],
    )


async def _device(context: ContextDep, device_id: str) -> Device:
    device = await DeviceStore(context.sessions).get(device_id)
    if device is None:
        raise HTTPException(404, f"no device {device_id!r}")
    return device


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise HTTPException(422, "timestamps need a time zone, e.g. 2026-11-23T08:00:00Z")
    return int(moment.timestamp() * 1000)


def _now_ms() -> int:
    return int(datetime.now().timestamp() * 1000)
