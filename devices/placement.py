"""Placing a device in the stored districts and grid cells (for `devices.provisioning`)."""

from __future__ import annotations

from dataclasses import replace

from devices.geo import Geography
from devices.registry import Device


def place(device: Device, geography: Geography | None) -> Device:
    """The device with its grid cell filled in from its point, when that lies in its district."""
    if geography is None or device.grid:
        return device
    district, grid = geography.locate(device.lat, device.lon)
    if grid is None or district != device.district:
        return device
    return replace(device, grid=grid)


def placement_problem(device: Device, geography: Geography | None) -> str | None:
    """Why the device's district or grid cell is unknown to `geography`, or its point lies in
    another district (None if fine, or no areas are stored; a point outside every district
    is allowed: a city's map need not cover its outskirts)."""
    if geography is None:
        return None
    if device.district not in {d.id for d in geography.districts}:
        return f"unknown district {device.district!r}"
    grids = {g.id: g.district for g in geography.grids}
    if device.grid and grids.get(device.grid) != device.district:
        return f"unknown grid cell {device.grid!r} in district {device.district!r}"
    located, _ = geography.locate(device.lat, device.lon)
    if located is not None and located != device.district:
        return (f"its point ({device.lat}, {device.lon}) lies in district {located!r}, not "
                f"{device.district!r}: check lat/lon, or give the district it is in")
    return None
