"""Devices: the registry, provisioning and MQTT logins, and a device's stored readings."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from api.clock import EXAMPLE, iso_times
from api.schemas.common import RequestBody, epoch_ms_field, iso_twin
from api.schemas.problems import Problem
from devices.registry import Device, DeviceStatus


class DevicePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "wl-0042", "type": "water_level", "district": "xicheng", "grid": "g-0-1",
        "lat": 39.93, "lon": 116.36, "department": "water_authority", "status": "active",
        "installed": "2026-05-01", "attributes": {"warning_level": 2.5},
    }]})

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
    attributes: dict[str, float] = Field(
        default_factory=dict, description="numeric attributes the rules read with attr(name)"
    )

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
            attributes=dict(device.attributes),
        )


class DeviceCreate(RequestBody):
    """A new device; its district (and grid cell, if given) must be a stored area when areas
    are stored, and its grid cell is located from its point when left out."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "wl-0042", "type": "water_level", "district": "xicheng", "lat": 39.93,
        "lon": 116.36, "department": "water_authority", "installed": "2026-05-01",
        "attributes": {"warning_level": 2.5},
    }]})
    id: str = Field(description="one MQTT topic level: ASCII letters, digits, . _ - (64 at most)")
    type: str = Field(description="a device type of the catalogue")
    district: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    grid: str = ""
    department: str = ""
    installed: date | None = None
    gateway: str | None = Field(None, description="id of the gateway that publishes for it")
    attributes: dict[str, float] = Field(
        default_factory=dict,
        description="numeric attributes for the rules' attr(name), e.g. warning_level (m)",
    )


class DeviceUpdate(RequestBody):
    """Fields to change; those left out keep their values (the id and type never change)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "maintenance"}, {"lat": 39.931, "lon": 116.362, "grid": "g-0-1"},
    ]})
    district: str | None = None
    grid: str | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    department: str | None = None
    status: DeviceStatus | None = Field(None, description="retired cuts its broker access")
    installed: date | None = None
    gateway: str | None = None
    attributes: dict[str, float] | None = Field(
        None, description="replaces all of the device's numeric attributes"
    )


class MqttLogin(BaseModel):
    """A device's MQTT login; the password is shown only in this response."""

    device_id: str
    username: str
    password: str


class DeviceCreated(BaseModel):
    device: DevicePublic
    mqtt: MqttLogin


class DeviceImportResult(BaseModel):
    imported: int
    new: int
    updated: int
    credentials: list[MqttLogin] = Field(description="logins of the new devices (shown once)")


class ImportProblems(Problem):
    """A refused import: nothing was written."""

    problems: list[str] = Field(description="every invalid row: '<row>: <reason>'")


class LatestReading(BaseModel):
    metric: str
    unit: str
    ts_ms: int = epoch_ms_field("at")
    at: ClassVar[str] = iso_twin("ts_ms")
    value: float


class LatestReadings(BaseModel):
    device_id: str
    readings: list[LatestReading] = Field(description="the newest value of each stored metric")


class DevicePage(BaseModel):
    items: list[DevicePublic]
    total: int = Field(description="devices matching the filters, over all pages")
    limit: int
    offset: int


class ReadingPoint(BaseModel):
    ts_ms: int = epoch_ms_field("at", "window start when aggregated")
    at: str = Field(description="ts_ms as RFC 3339 in UTC", examples=[EXAMPLE],
                    json_schema_extra={"format": "date-time"})
    value: float


class Readings(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "device_id": "wl-0042", "metric": "level_m", "unit": "m", "start_ms": 1795420800000,
        "end_ms": 1795420920000, "since": "2026-11-23T08:00:00.000Z",
        "until": "2026-11-23T08:02:00.000Z", "every": "1m", "aggregate": "mean",
        "points": [
            {"ts_ms": 1795420800000, "at": "2026-11-23T08:00:00.000Z", "value": 1.82},
            {"ts_ms": 1795420860000, "at": "2026-11-23T08:01:00.000Z", "value": 1.87},
        ],
    }]})

    device_id: str
    metric: str
    unit: str
    start_ms: int = epoch_ms_field("since")
    end_ms: int = epoch_ms_field("until")
    since: ClassVar[str] = iso_twin("start_ms")
    until: ClassVar[str] = iso_twin("end_ms")
    every: str | None = Field(None, description="aggregation window, e.g. 1m; null = raw points")
    aggregate: str | None = None
    points: list[ReadingPoint]

    @classmethod
    def body(cls, ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
             **head: Any) -> bytes:
        """This model's JSON for a series given as columns: the head through the model, the
        points straight from the arrays (a `ReadingPoint` each would cost a page of 100,000
        points several times its serialization)."""
        out = cls(**head, points=[]).model_dump(mode="json")
        out["points"] = [{"ts_ms": t, "at": at, "value": v} for t, at, v in
                         zip(ts_ms.tolist(), iso_times(ts_ms), values.tolist(), strict=True)]
        return json.dumps(out, separators=(",", ":")).encode()

