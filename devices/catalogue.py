"""The device-type catalogue: which metrics each type reports, in what unit and valid range."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from devices import plain_yaml
from devices.errors import CatalogueError


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    min: float
    max: float


@dataclass(frozen=True)
class DeviceType:
    name: str
    description: str
    report_interval_s: float
    metrics: dict[str, Metric]


Catalogue = dict[str, DeviceType]


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load the catalogue from `path`, or the one shipped with the package."""
    if path is None:
        text = resources.files("devices").joinpath("data/device_types.yaml").read_text()
    else:
        text = path.read_text()
    raw = plain_yaml.load(text)[1]
    if not isinstance(raw, dict):
        raise CatalogueError("the device-type catalogue must be a mapping of type name to type")
    return {name: _device_type(name, spec) for name, spec in raw.items()}


def _device_type(name: str, spec: dict) -> DeviceType:
    try:
        metrics = {
            m: Metric(m, str(ms["unit"]), float(ms["min"]), float(ms["max"]))
            for m, ms in spec["metrics"].items()
        }
        return DeviceType(
            name, str(spec.get("description", "")), float(spec["report_interval_s"]), metrics
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogueError(f"device type {name!r}: {exc}") from exc
