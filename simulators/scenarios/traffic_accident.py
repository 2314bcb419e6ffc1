"""Traffic accident: speed collapses and occupancy jumps on consecutive road sensors.

The corridor is a row of up to three consecutive grid cells, eastwards from `place` (a cell),
one road sensor in each that has one. At intensity 1 speed falls to 15 % of free flow and
occupancy rises to 75 % within a few minutes. Placed at random, it happens outside the rush
hours (07-10 and 17-20 local). Hazard start: speed falls below half of free flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.scenarios.base import (
    Params,
    Run,
    cell_position,
    ids,
    in_cells,
    interval_s,
    of_type,
)
from simulators.scenarios.frame import Frame, Window
from simulators.scenarios.truth import EventTruth

CORRIDOR_CELLS = 3
JAMMED_SHARE = 0.15  # of free-flow speed, at intensity 1
JAMMED_OCCUPANCY = 75.0
HAZARD_SHARE = 0.5
DEFAULT_DURATION_MS = 45 * 60_000
_RUSH_H = ((7, 10), (17, 20))
_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TrafficAccident:
    truth: EventTruth
    sensors: np.ndarray
    window: Window
    intensity: float

    def apply(self, city: City, frame: Frame) -> None:
        rows = frame.rows(self.sensors, self.window.start_ms, self.window.end_ms)
        p = self.window.profile(frame.ts_ms[rows])
        free = city.attrs["free_flow_kmh"][frame.dev[rows]]
        jammed = free * max(1 - self.intensity * (1 - JAMMED_SHARE), 0.02)
        for metric, to in (("speed_kmh", jammed), ("occupancy_pct", JAMMED_OCCUPANCY)):
            v = frame.values[metric]
            v[rows] = v[rows] * (1 - p) + to * p
        frame.values["flow_vph"][rows] *= 1 - 0.7 * p


def corridor(city: City, first_cell: str) -> np.ndarray:
    row, col = cell_position(first_cell)
    roads = of_type(city, "traffic_flow")
    picked = []
    for k in range(CORRIDOR_CELLS):
        here = in_cells(city, roads, {f"g-{row}-{col + k}"})
        if len(here):
            picked.append(int(here[0]))
    return np.array(picked, dtype=np.int64)


def off_peak(start_ms: int, utc_offset_s: int) -> int:
    """`start_ms`, moved three hours on while it falls in a rush hour (local time)."""
    for _ in range(4):
        hour = ((start_ms / 1000 + utc_offset_s) / 3600) % 24
        if not any(a <= hour < b for a, b in _RUSH_H):
            return start_ms
        start_ms += 3 * _HOUR_MS
    return start_ms


def build(run: Run, p: Params, event_id: str) -> TrafficAccident:
    city = run.city
    if p.place is not None:
        if p.place not in {c.id for c in city.cells}:
            raise ValueError(f"place {p.place!r}: not a grid cell of the simulated city")
        sensors = corridor(city, p.place)
    else:
        starts = [c.id for c in city.cells if len(corridor(city, c.id)) >= 2]
        if not starts:
            raise ValueError("the simulated city has no corridor with two road sensors")
        sensors = corridor(city, str(p.rng(1).choice(starts)))
    if len(sensors) == 0:
        raise ValueError(f"no road sensor in the corridor from {p.place}")
    start_ms = p.start_ms if p.place is not None else off_peak(p.start_ms, city.utc_offset_s)
    window = Window.of(start_ms, p.duration_ms, rise_share=0.08, fall_share=0.2)
    jammed = max(1 - p.intensity * (1 - JAMMED_SHARE), 0.02)
    if jammed >= HAZARD_SHARE:
        raise ValueError(f"traffic_accident intensity {p.intensity} keeps speed above half")
    first = int(sensors[0])
    truth = EventTruth(
        id=event_id, kind="traffic_accident", category="traffic",
        min_severity="orange" if jammed < 0.3 else "yellow",
        handler="traffic-police", teams=("traffic-control",),
        districts=tuple(sorted({city.devices[i].district for i in sensors})),
        cells=tuple(sorted({city.devices[i].grid for i in sensors})),
        devices=ids(city, sensors), first_device=city.devices[first].id,
        report_interval_s=interval_s(city, first), onset_ms=start_ms,
        # from a free-flowing road; a road already slower crosses a little earlier
        start_ms=window.reaches_ms((1 - HAZARD_SHARE) / (1 - jammed)), end_ms=window.end_ms,
        params={"intensity": p.intensity},
    )
    return TrafficAccident(truth, sensors, window, p.intensity)
