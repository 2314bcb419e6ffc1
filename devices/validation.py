"""What provisioning checks of a device before it is written (pure; the one home of these checks).

`parse` turns field values (a request body, CLI options, a file row) into a `Device`;
`device_problem` says why a parsed device may not be stored: an id the broker cannot take
as a username, a district or grid cell the stored areas do not have, a gateway that is not
a device. `devices.provisioning` runs both for every entry point.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from devices.catalogue import Catalogue
from devices.credentials import username_problem
from devices.errors import InvalidDeviceError
from devices.files import parse_device
from devices.geo import Geography
from devices.placement import placement_problem
from devices.registry import Device


def parse(fields: Mapping[str, object], catalogue: Catalogue) -> Device:
    """The device from column values; InvalidDeviceError names the first problem."""
    try:
        return parse_device(fields, catalogue)
    except ValueError as exc:
        raise InvalidDeviceError(str(exc)) from None


def device_problem(
    device: Device, geography: Geography | None, devices: Container[str]
) -> str | None:
    """Why `device` may not be stored (None if it may); `devices` holds the ids its gateway
    may name (the stored devices, and those written with it)."""
    return (
        username_problem(device.id)
        or placement_problem(device, geography)
        or gateway_problem(device, devices)
    )


def gateway_problem(device: Device, devices: Container[str]) -> str | None:
    if device.gateway is None:
        return None
    if device.gateway == device.id:
        return "a device cannot be its own gateway"
    if device.gateway not in devices:
        return f"unknown gateway {device.gateway!r}"
    return None
