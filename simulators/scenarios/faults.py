"""Sensor and network faults that must not become emergencies.

stuck            every metric frozen at the value it had when the fault began
drift            one metric drifts slowly (linearly) away, then is recalibrated at the end
spike            three single readings jump to a high but valid value
dropout          the device sends nothing
gateway_offline  every device of one grid cell (children of its gateway) sends nothing
clock_skew       the device stamps its readings an hour (`intensity` hours) early or late
duplicates       every message is published twice
garbage          one metric reads far outside its valid range

`place` is a device (a grid cell for gateway_offline). `expect_report` is whether the shipped
pack should report the fault as a device fault (offline, out of range, stuck), given its
limits; a fault it need not report still must not raise an emergency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from simulators.city import City
from simulators.scenarios.base import Params, Run, ids
from simulators.scenarios.frame import Frame
from simulators.scenarios.truth import FaultTruth
from simulators.signals import values

_MINUTE_MS, _HOUR_MS = 60_000, 3_600_000
# What the shipped pack watches: offline limits per type, and the types it checks for stuck.
OFFLINE_LIMIT_MS = {"gas": 5 * _MINUTE_MS, "smoke": 5 * _MINUTE_MS, "manhole": 50 * _MINUTE_MS}
OFFLINE_DEFAULT_MS = 10 * _MINUTE_MS
STUCK_TYPES = frozenset({"air_quality", "noise", "weather"})
STUCK_LIMIT_MS = 2 * _HOUR_MS
# Per type: the metric a drift, spike or garbage fault hits, and a slow drift's full size.
DRIFT = {"air_quality": ("pm25", 15.0), "noise": ("laeq_db", 4.0), "weather": ("temp_c", 3.0),
         "water_level": ("level_m", 0.25), "rain_gauge": ("rain_mm_h", 1.0),
         "structural": ("strain_ue", 40.0)}
SPIKE = {"air_quality": "pm25", "noise": "laeq_db", "traffic_flow": "flow_vph",
         "weather": "humidity_pct", "rain_gauge": "rain_mm_h", "manhole": "level_m"}
GARBAGE_TYPES = ("air_quality", "noise", "water_level", "traffic_flow", "weather", "gas")
DEFAULTS_MS = {"stuck": 3 * _HOUR_MS, "drift": 12 * _HOUR_MS, "spike": 2 * _HOUR_MS,
               "dropout": 30 * _MINUTE_MS, "gateway_offline": 90 * _MINUTE_MS,
               "clock_skew": 30 * _MINUTE_MS, "duplicates": _HOUR_MS, "garbage": 30 * _MINUTE_MS}
KINDS = tuple(DEFAULTS_MS)


@dataclass(frozen=True)
class Fault:
    truth: FaultTruth
    devices: np.ndarray
    metric: str | None = None
    frozen: dict[str, np.ndarray] = field(default_factory=dict)  # stuck: values at the start
    amount: float = 0.0  # drift: full size; garbage: the value; clock_skew: offset ms
    spikes_ms: tuple[int, ...] = ()

    def apply(self, city: City, frame: Frame) -> None:
        t = self.truth
        rows = frame.rows(self.devices, t.start_ms, t.end_ms)
        if len(rows) == 0:
            return
        kind = t.kind
        if kind == "stuck":
            at = np.searchsorted(self.devices, frame.dev[rows])
            for metric, frozen in self.frozen.items():
                frame.values[metric][rows] = frozen[at]
        elif kind == "drift":
            assert self.metric is not None
            share = (frame.ts_ms[rows] - t.start_ms) / (t.end_ms - t.start_ms)
            frame.values[self.metric][rows] += self.amount * share
        elif kind == "spike":
            assert self.metric is not None
            interval_ms = city.catalogue[city.devices[int(self.devices[0])].type].report_interval_s
            ts = frame.ts_ms[rows]
            hit = np.zeros(len(rows), dtype=bool)
            for s in self.spikes_ms:
                hit |= (ts >= s) & (ts < s + interval_ms * 1000)
            frame.values[self.metric][rows[hit]] = self.amount
        elif kind in ("dropout", "gateway_offline"):
            frame.copies[rows] = 0
        elif kind == "clock_skew":
            frame.sent_ts_ms[rows] += int(self.amount)
        elif kind == "duplicates":
            frame.copies[rows] = 2
        elif kind == "garbage":
            assert self.metric is not None
            frame.values[self.metric][rows] = self.amount


def build(kind: str, run: Run, p: Params, fault_id: str) -> Fault:
    city = run.city
    start, end = p.start_ms, p.start_ms + p.duration_ms
    rng = p.rng(3)

    def truth(devices: np.ndarray, expect: bool, **extra: object) -> FaultTruth:
        return FaultTruth(fault_id, kind, ids(city, devices), start, end, expect,
                          {"intensity": p.intensity, **extra})

    if kind == "gateway_offline":
        cells = {c.id for c in city.cells}
        if p.place is not None and p.place not in cells:
            raise ValueError(f"place {p.place!r}: not a grid cell of the simulated city")
        counts = Counter(d.grid for d in city.devices)  # a gateway has several children
        busy = sorted(c for c, n in counts.items() if n > 1) or sorted(counts)
        cell = p.place or str(rng.choice(busy))
        children = np.array([i for i, d in enumerate(city.devices) if d.grid == cell],
                            dtype=np.int64)
        if len(children) == 0:
            raise ValueError(f"grid cell {cell!r} has no devices")
        limit = max(_offline_limit(city, i) for i in children)
        return Fault(truth(children, p.duration_ms > limit, cell=cell), children)
    if kind not in DEFAULTS_MS:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
    dev = _place_device(city, p.place) if p.place is not None else _any_device(city, kind, rng)
    type_name = city.devices[dev].type
    one = np.array([dev], dtype=np.int64)
    if kind == "stuck":
        frozen = values(city, one, np.array([start]))
        metrics = city.catalogue[type_name].metrics
        expect = type_name in STUCK_TYPES and p.duration_ms > STUCK_LIMIT_MS + 30 * _MINUTE_MS
        return Fault(truth(one, expect), one, frozen={m: frozen[m] for m in metrics})
    if kind == "drift":
        metric, size = DRIFT[_modelled(type_name, DRIFT, kind)]
        return Fault(truth(one, False, metric=metric), one, metric, amount=size * p.intensity)
    if kind == "spike":
        metric = SPIKE[_modelled(type_name, SPIKE, kind)]
        spec = city.catalogue[type_name].metrics[metric]
        moments = sorted(int(x) for x in rng.integers(start, end, size=3))
        return Fault(truth(one, False, metric=metric), one, metric,
                     amount=spec.min + 0.9 * (spec.max - spec.min), spikes_ms=tuple(moments))
    if kind == "dropout":
        return Fault(truth(one, p.duration_ms > _offline_limit(city, dev)), one)
    if kind == "clock_skew":
        skew = int(p.intensity * _HOUR_MS) * (1 if rng.random() < 0.5 else -1)
        return Fault(truth(one, p.duration_ms > _offline_limit(city, dev), skew_ms=skew), one,
                     amount=skew)
    if kind == "duplicates":
        return Fault(truth(one, False), one)
    _modelled(type_name, GARBAGE_TYPES, kind)
    metric = next(iter(city.catalogue[type_name].metrics))
    spec = city.catalogue[type_name].metrics[metric]
    garbage = spec.max + 10 * (spec.max - spec.min) if rng.random() < 0.5 else spec.min - 9999
    return Fault(truth(one, True, metric=metric), one, metric, amount=garbage)


def _modelled(type_name: str, types: Collection[str], kind: str) -> str:
    if type_name not in types:
        raise ValueError(f"{kind}: no {kind} model for a {type_name} device")
    return type_name


def _any_device(city: City, kind: str, rng: np.random.Generator) -> int:
    """A device of a type the fault has a model for."""
    pool: Collection[str] | None = {"drift": DRIFT.keys(), "spike": SPIKE.keys(),
                                    "garbage": GARBAGE_TYPES}.get(kind)
    types = np.array(city.type_names)[city.type_index]
    usable = np.arange(len(city.devices)) if pool is None else np.flatnonzero(
        np.isin(types, list(pool)))
    if len(usable) == 0:
        raise ValueError(f"the simulated city has no device a {kind} fault applies to")
    return int(rng.choice(usable))


def _place_device(city: City, device_id: str) -> int:
    for i, d in enumerate(city.devices):
        if d.id == device_id:
            return i
    raise ValueError(f"place {device_id!r}: no such device in the simulated city")


def _offline_limit(city: City, i: int) -> int:
    return OFFLINE_LIMIT_MS.get(city.devices[i].type, OFFLINE_DEFAULT_MS) + 2 * _MINUTE_MS
