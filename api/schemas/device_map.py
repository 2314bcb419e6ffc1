"""The map's devices: every device in a few columns, compact enough for a city of them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from devices.store import MAP_COLUMNS, MapRows


class DeviceMap(BaseModel):
    """Device i is ``id[i]``, ``type[i]``, … ``status[i]``; ordered by id."""

    total: int
    id: list[str]
    type: list[str] = Field(description="a device type of the catalogue")
    district: list[str]
    grid: list[str] = Field(description='its grid cell ("" when none)')
    lat: list[float]
    lon: list[float]
    status: list[str] = Field(description="active, maintenance or retired")

    @classmethod
    def of(cls, rows: MapRows) -> DeviceMap:
        columns: dict[str, object] = {
            name: [row[n] for row in rows] for n, name in enumerate(MAP_COLUMNS)
        }
        return cls.model_validate({"total": len(rows), **columns})
