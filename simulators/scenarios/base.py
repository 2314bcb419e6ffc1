"""What every scenario shares: the run it is part of, its parameters, and the city lookups.

A scenario is asked for with a spec, ``NAME[:k=v,...]``, e.g. ``gas_leak:place=gs-0007,
start=2h,duration=40m,intensity=1.5,seed=3``. Every kind takes `place` (a district, a grid
cell or a device, as the kind needs; chosen at random when absent), `start` (offset from the
run's start), `duration`, `intensity` (1 = the kind's nominal strength) and `seed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulators.city import City
from simulators.scenarios.frame import Frame
from simulators.scenarios.truth import EventTruth, FaultTruth

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
KEYS = frozenset({"place", "start", "duration", "intensity", "seed"})


class Scenario(Protocol):
    @property
    def truth(self) -> EventTruth | FaultTruth: ...

    def apply(self, city: City, frame: Frame) -> None:
        """Change the frame's readings (and what the wire carries) in place."""


@dataclass(frozen=True)
class Run:
    """The simulated run a scenario is placed in."""

    city: City
    start_ms: int
    duration_ms: int
    seed: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True)
class Params:
    place: str | None
    start_ms: int  # absolute
    duration_ms: int
    intensity: float
    seed: int

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME[:k=v,...]`` -> (name, {k: v}); ValueError with the reason when malformed."""
    name, _, rest = spec.partition(":")
    if not name:
        raise ValueError(f"scenario {spec!r}: no name")
    pairs: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"scenario {spec!r}: expected k=v, got {part!r}")
        pairs[key.strip()] = value.strip()
    return name.strip(), pairs


def duration_ms(text: str) -> int:
    """``90s``, ``10m``, ``2h``, ``1d`` or plain seconds -> milliseconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 10m, 2h, 1d)")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


def params(run: Run, raw: dict[str, str], default_duration_ms: int, index: int,
           allowed: frozenset[str] = KEYS) -> Params:
    """Parameters of the `index`-th scenario of the run; defaults drawn from the run's seed."""
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown scenario parameters {sorted(unknown)}; known: {sorted(allowed)}")
    seed = int(raw["seed"]) if "seed" in raw else run.seed * 1000 + index
    duration = duration_ms(raw["duration"]) if "duration" in raw else default_duration_ms
    if "start" in raw:
        start = run.start_ms + duration_ms(raw["start"])
    else:  # somewhere it fits inside the run
        room = max(run.duration_ms - duration, 0)
        start = run.start_ms + int(np.random.default_rng([seed, 99]).integers(0, room + 1))
    intensity = float(raw.get("intensity", 1.0))
    if duration <= 0 or not intensity > 0:
        raise ValueError("scenario duration and intensity must be positive")
    return Params(raw.get("place"), start, duration, intensity, seed)


def of_type(city: City, type_name: str) -> np.ndarray:
    """Indices of the city's devices of `type_name`."""
    return np.flatnonzero(city.type_index == city.type_names.index(type_name))


def in_cells(city: City, idx: np.ndarray, cells: set[str]) -> np.ndarray:
    return np.array([i for i in idx if city.devices[i].grid in cells], dtype=np.int64)


def in_districts(city: City, idx: np.ndarray, districts: set[str]) -> np.ndarray:
    return np.array([i for i in idx if city.devices[i].district in districts], dtype=np.int64)


def cell_position(cell: str) -> tuple[int, int]:
    _, row, col = cell.split("-")
    return int(row), int(col)


def neighbour_cells(cell: str) -> set[str]:
    """The cell and the up-to-8 cells around it."""
    row, col = cell_position(cell)
    return {f"g-{row + dr}-{col + dc}" for dr in (-1, 0, 1) for dc in (-1, 0, 1)}


def device_index(city: City, device_id: str, type_name: str) -> int:
    for i, device in enumerate(city.devices):
        if device.id == device_id:
            if device.type != type_name:
                raise ValueError(f"place {device_id!r} is a {device.type}, not a {type_name}")
            return i
    raise ValueError(f"place {device_id!r}: no such device in the simulated city")


def pick_device(city: City, p: Params, type_name: str, usable: np.ndarray | None = None) -> int:
    """The device named by `place`, or one of `usable` (default: all of the type) at random."""
    if p.place is not None:
        return device_index(city, p.place, type_name)
    pool = of_type(city, type_name) if usable is None else usable
    if len(pool) == 0:
        raise ValueError(f"the simulated city has no {type_name} device for this scenario")
    return int(p.rng(1).choice(pool))


def ids(city: City, idx: np.ndarray | list[int]) -> tuple[str, ...]:
    return tuple(city.devices[int(i)].id for i in idx)


def interval_s(city: City, i: int) -> float:
    return city.catalogue[city.devices[i].type].report_interval_s
