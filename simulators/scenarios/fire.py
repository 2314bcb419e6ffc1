"""Fire: smoke obscuration and temperature rise together at one smoke detector.

Peak 12 %/m obscuration and +60 C at intensity 1: the pack's smoke (4 %/m) and heat (57 C)
alarms, and both in one cell make a confirmed fire (red). Hazard start: obscuration reaches
4 %/m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.scenarios.base import Params, Run, ids, interval_s, pick_device
from simulators.scenarios.frame import Frame, Window
from simulators.scenarios.truth import EventTruth

PEAK_OBSCURATION = 12.0  # %/m
PEAK_RISE_C = 60.0
SMOKE_ALARM = 4.0
DEFAULT_DURATION_MS = 30 * 60_000


@dataclass(frozen=True)
class Fire:
    truth: EventTruth
    site: int
    window: Window
    intensity: float

    def apply(self, city: City, frame: Frame) -> None:
        rows = frame.rows(np.array([self.site]), self.window.start_ms, self.window.end_ms)
        p = self.window.profile(frame.ts_ms[rows])
        frame.values["obscuration_pct_m"][rows] += self.intensity * PEAK_OBSCURATION * p
        frame.values["temp_c"][rows] += self.intensity * PEAK_RISE_C * p


def build(run: Run, p: Params, event_id: str) -> Fire:
    city = run.city
    peak = p.intensity * PEAK_OBSCURATION
    if peak < SMOKE_ALARM:
        raise ValueError(f"fire intensity {p.intensity} peaks below {SMOKE_ALARM} %/m")
    site = pick_device(city, p, "smoke")
    window = Window.of(p.start_ms, p.duration_ms, rise_share=0.3, fall_share=0.3)
    device = city.devices[site]
    truth = EventTruth(
        id=event_id, kind="fire", category="fire",
        min_severity="red" if 21 + p.intensity * PEAK_RISE_C >= 60 else "orange",
        handler="fire-rescue", teams=("fire-station",),
        districts=(device.district,), cells=(device.grid,), devices=ids(city, [site]),
        first_device=device.id, report_interval_s=interval_s(city, site), onset_ms=p.start_ms,
        start_ms=window.reaches_ms(SMOKE_ALARM / peak), end_ms=window.end_ms,
        params={"intensity": p.intensity},
    )
    return Fire(truth, site, window, p.intensity)
