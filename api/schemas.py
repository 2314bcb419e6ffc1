"""Request and response models of the HTTP API (pydantic at the wire edge only)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from devices.registry import Device


class DevicePublic(BaseModel):
    id: str
    type: str
    district: str
    grid: str
    lat: float
    lon: float
    department: str
    status: str
    installed: date | None = None
    gateway: str | None = None

    @classmethod
    def of(cls, device: Device) -> DevicePublic:
        return cls(
            id=device.id,
            type=device.type,
            district=device.district,
            grid=device.grid,
            lat=device.lat,
            lon=device.lon,
            department=device.department,
            status=str(device.status),
            installed=device.installed,
            gateway=device.gateway,
        )


class DevicePage(BaseModel):
    items: list[DevicePublic]
    total: int = Field(description="devices matching the filters, over all pages")
    limit: int
    offset: int


class ReadingPoint(BaseModel):
    ts_ms: int = Field(description="epoch milliseconds (window start when aggregated)")
    value: float


class Readings(BaseModel):
    device_id: str
    metric: str
    unit: str
    start_ms: int
    end_ms: int
    every: str | None = Field(None, description="aggregation window, e.g. 1m; null = raw points")
    aggregate: str | None = None
    points: list[ReadingPoint]


class Problem(BaseModel):
    detail: str
