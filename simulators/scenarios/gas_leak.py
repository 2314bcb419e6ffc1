"""Gas leak: one gas detector climbs through 20 % and 50 % LEL; detectors nearby rise less.

Peak 65 % LEL at intensity 1 at the leak, 8 % at up to four detectors in the cells around it
(below the 20 % alarm, as gas thins with distance). Hazard start: the leak's detector reaches
20 % LEL (the pack's orange level; red from 50 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.scenarios.base import (
    Params,
    Run,
    ids,
    in_cells,
    interval_s,
    neighbour_cells,
    of_type,
    pick_device,
)
from simulators.scenarios.frame import Frame, Window
from simulators.scenarios.truth import EventTruth

PEAK_LEL = 65.0
NEIGHBOUR_PEAK_LEL = 8.0
ALARM_LEL, RED_LEL = 20.0, 50.0
DEFAULT_DURATION_MS = 40 * 60_000


@dataclass(frozen=True)
class GasLeak:
    truth: EventTruth
    leak: int
    neighbours: np.ndarray
    window: Window
    intensity: float

    def apply(self, city: City, frame: Frame) -> None:
        for devices, peak in (([self.leak], PEAK_LEL), (self.neighbours, NEIGHBOUR_PEAK_LEL)):
            rows = frame.rows(np.asarray(devices), self.window.start_ms, self.window.end_ms)
            p = self.window.profile(frame.ts_ms[rows])
            frame.values["lel_pct"][rows] += self.intensity * peak * p


def build(run: Run, p: Params, event_id: str) -> GasLeak:
    city = run.city
    peak = p.intensity * PEAK_LEL
    if peak < ALARM_LEL:
        raise ValueError(f"gas_leak intensity {p.intensity} peaks below {ALARM_LEL} % LEL")
    leak = pick_device(city, p, "gas")
    cell = city.devices[leak].grid
    around = in_cells(city, of_type(city, "gas"), neighbour_cells(cell) - {cell} | {cell})
    neighbours = np.array([i for i in around if i != leak][:4], dtype=np.int64)
    window = Window.of(p.start_ms, p.duration_ms, rise_share=0.4, fall_share=0.2)
    devices = [leak, *neighbours.tolist()]
    truth = EventTruth(
        id=event_id, kind="gas_leak", category="safety",
        min_severity="red" if peak >= RED_LEL else "orange",
        handler="gas-company", teams=("gas-emergency",),
        districts=(city.devices[leak].district,),
        cells=tuple(sorted({city.devices[i].grid for i in devices})),
        devices=ids(city, devices), first_device=city.devices[leak].id,
        report_interval_s=interval_s(city, leak), onset_ms=p.start_ms,
        start_ms=window.reaches_ms(ALARM_LEL / peak), end_ms=window.end_ms,
        params={"intensity": p.intensity, "peak_lel_pct": peak},
    )
    return GasLeak(truth, leak, neighbours, window, p.intensity)
