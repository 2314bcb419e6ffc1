"""Errors raised by `devices`.

DeviceError
 ├── InvalidNameError(kind, value, reason)  an id breaks the grammar of `devices.names`
 │                         (also a ValueError, so pydantic reports it as a field error)
 ├── CatalogueError        the device-type catalogue is invalid
 ├── RegistryError         a device record is invalid or conflicts with another
 │    ├── InvalidDeviceError             refused by provisioning: a bad field, an unknown
 │    │                                  type, district, grid cell or gateway, an id the
 │    │                                  broker cannot take as a username
 │    ├── UnknownDeviceError(device_id)  no such device
 │    ├── DuplicateDeviceError(ids)      the id exists already
 │    └── RetiredDeviceError(device_id)  the device is retired: it gets no new login
 ├── GeographyError        a districts / grid-cells GeoJSON is invalid
 ├── DeviceFileError       a device file (CSV / GeoJSON) has invalid rows; lists them all
 └── DecodeError(reason)   a payload was rejected; `reason` is one of `RejectReason`
"""

from __future__ import annotations

from enum import StrEnum


class DeviceError(Exception):
    """Root of the errors raised by `devices`."""


class InvalidNameError(DeviceError, ValueError):
    def __init__(self, kind: str, value: str, reason: str) -> None:
        super().__init__(f"bad {kind} id {value!r}: {reason}")
        self.kind, self.value, self.reason = kind, value, reason


class CatalogueError(DeviceError):
    pass


class RegistryError(DeviceError):
    pass


class InvalidDeviceError(RegistryError):
    """A device provisioning refuses; the message names the field and why."""


class UnknownDeviceError(RegistryError):
    def __init__(self, device_id: str) -> None:
        super().__init__(f"no device {device_id!r}")
        self.device_id = device_id


class DuplicateDeviceError(RegistryError):
    def __init__(self, device_ids: list[str]) -> None:
        message = (f"device {device_ids[0]!r} already exists" if len(device_ids) == 1
                   else f"devices already exist: {device_ids[:10]}")
        super().__init__(message)
        self.device_ids = device_ids


class RetiredDeviceError(RegistryError):
    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} is retired; it may not connect")
        self.device_id = device_id


class GeographyError(DeviceError):
    pass


class DeviceFileError(DeviceError):
    """Problems found in a device file, each as "<file> <row/feature>: <reason>"."""

    def __init__(self, path: str, problems: list[str]) -> None:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{path}: {len(problems)} invalid rows: {shown}{more}")
        self.path = path
        self.problems = problems


class RejectReason(StrEnum):
    """Why a message was rejected; the value is the label used in counters and dead letters."""

    MALFORMED_JSON = "malformed_json"
    MALFORMED_SENML = "malformed_senml"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_NOT_ACTIVE = "device_not_active"
    DISTRICT_MISMATCH = "district_mismatch"
    UNKNOWN_METRIC = "unknown_metric"
    NON_NUMERIC = "non_numeric"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    TOO_OLD = "too_old"
    IN_FUTURE = "in_future"
    TOO_LARGE = "too_large"


class DecodeError(DeviceError):
    def __init__(self, reason: RejectReason, detail: str, device_id: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.device_id = device_id
