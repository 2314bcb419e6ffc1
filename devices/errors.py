"""Errors raised by `devices`.

DeviceError
 ├── CatalogueError        the device-type catalogue is invalid
 ├── RegistryError         a device record is invalid or conflicts with another
 ├── GeographyError        a districts / grid-cells GeoJSON is invalid
 ├── DeviceFileError       a device file (CSV / GeoJSON) has invalid rows; lists them all
 └── DecodeError(reason)   a payload was rejected; `reason` is one of `RejectReason`
"""

from __future__ import annotations

from enum import StrEnum


class DeviceError(Exception):
    """Root of the errors raised by `devices`."""


class CatalogueError(DeviceError):
    pass


class RegistryError(DeviceError):
    pass


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
