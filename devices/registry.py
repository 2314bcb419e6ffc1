"""An in-memory snapshot of the registry: devices and their series slots.

The decoder, the ingest writer and the engine all read this snapshot; the SQL
store (`devices.store`) is where devices live. Slots are assigned in order of
first appearance and never reused, so per-series state indexed by slot stays
valid when devices are added.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import numpy as np

from devices.catalogue import Catalogue
from devices.errors import RegistryError

# The rule grammar's identifier: ``attr(name)`` can only name attributes spelled like this.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


class DeviceStatus(StrEnum):
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    type: str
    district: str
    lat: float
    lon: float
    grid: str = ""
    department: str = ""
    status: DeviceStatus = DeviceStatus.ACTIVE
    installed: date | None = None
    gateway: str | None = None
    attributes: Mapping[str, float] = field(default_factory=dict)  # held as `Attributes`

    def __post_init__(self) -> None:
        for shared in ("type", "district", "grid", "department"):  # one copy per city, not device
            value = getattr(self, shared)
            if isinstance(value, str):
                object.__setattr__(self, shared, sys.intern(value))
        if not isinstance(self.attributes, Attributes):
            try:
                attributes = Attributes(self.attributes)
            except ValueError as exc:
                raise ValueError(f"device {self.id}: {exc}") from None
            object.__setattr__(self, "attributes", attributes)


class Attributes(Mapping[str, float]):
    """A device's numeric attributes (e.g. a gauge's ``warning_level``): read-only, hashable.

    Raises:
        ValueError: a name the rule grammar cannot spell, or a value that is not a finite number.
    """

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, float]) -> None:
        items = {}
        for name, value in values.items():
            if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
                raise ValueError(f"attribute name {name!r} is not an identifier "
                                 "(letters, digits and _, not starting with a digit)")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"attribute {name!r} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"attribute {name!r} must be finite, not {value!r}")
            items[name] = float(value)
        self._items = dict(sorted(items.items()))

    def __getitem__(self, name: str) -> float:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"Attributes({self._items!r})"


@dataclass(frozen=True, slots=True)
class Series:
    slot: int
    device_id: str
    metric: str


@dataclass
class Registry:
    """Devices by id, plus the (device, metric) -> slot table."""

    catalogue: Catalogue
    devices: dict[str, Device] = field(default_factory=dict)
    _slots: dict[tuple[str, str], int] = field(default_factory=dict)
    _series: list[Series] = field(default_factory=list)

    @classmethod
    def build(cls, catalogue: Catalogue, devices: Iterable[Device]) -> Registry:
        registry = cls(catalogue)
        for device in devices:
            registry.put(device)
        return registry

    def put(self, device: Device) -> None:
        """Add or replace a device, giving each of its type's metrics a slot."""
        device_type = self.catalogue.get(device.type)
        if device_type is None:
            raise RegistryError(f"device {device.id}: unknown device type {device.type!r}")
        self.devices[device.id] = device
        for metric in device_type.metrics:
            key = (device.id, metric)
            if key not in self._slots:
                self._slots[key] = len(self._series)
                self._series.append(Series(len(self._series), device.id, metric))

    def get(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def slot(self, device_id: str, metric: str) -> int | None:
        return self._slots.get((device_id, metric))

    def series(self, slot: int) -> Series:
        return self._series[slot]

    @property
    def n_series(self) -> int:
        return len(self._series)

    def slot_column(self, attribute: str) -> np.ndarray:
        """One device attribute per slot (e.g. "type", "district", "grid") as an object array."""
        return np.array(
            [getattr(self.devices[s.device_id], attribute) for s in self._series], dtype=object
        )

    def attributes(self) -> dict[str, Mapping[str, float]]:
        """The devices' numeric attributes by device id (those without any left out)."""
        return {d.id: d.attributes for d in self.devices.values() if d.attributes}

    def metric_column(self) -> np.ndarray:
        return np.array([s.metric for s in self._series], dtype=object)

    def updated(self, devices: Iterable[Device]) -> Registry:
        """A new snapshot with `devices` added or replaced; every existing slot keeps its
        number and series, even one a re-typed device no longer reports (slots are
        append-only). The series objects are shared with this snapshot, not rebuilt."""
        fresh = Registry(self.catalogue, dict(self.devices), dict(self._slots), list(self._series))
        for device in devices:
            fresh.put(device)
        return fresh
