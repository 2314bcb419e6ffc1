"""Structural: strain and tilt of one structure sensor drift towards their allowable values.

Both drift from their as-built values to 90 % of the asset's allowables (attributes
`tilt_allow_deg`, `strain_allow_ue`) at intensity 1 (orange: the pack warns from 60, 80 and
100 %). Hazard start: either first reaches 60 % of its allowable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.scenarios.base import Params, Run, ids, interval_s, pick_device
from simulators.scenarios.frame import Frame, Window
from simulators.scenarios.truth import EventTruth

PEAK_SHARE = 0.9  # of the allowable, at intensity 1
WARN_SHARE = 0.6
DEFAULT_DURATION_MS = 6 * 3_600_000
_METRICS = (("tilt_deg", "tilt_base_deg", "tilt_allow_deg"),
            ("strain_ue", "strain_base_ue", "strain_allow_ue"))


@dataclass(frozen=True)
class Structural:
    truth: EventTruth
    site: int
    window: Window
    intensity: float

    def apply(self, city: City, frame: Frame) -> None:
        rows = frame.rows(np.array([self.site]), self.window.start_ms, self.window.end_ms)
        p = self.window.profile(frame.ts_ms[rows])
        for metric, base, allow in _METRICS:
            target = self.intensity * PEAK_SHARE * city.attrs[allow][self.site]
            v = frame.values[metric]
            v[rows] = v[rows] + (target - city.attrs[base][self.site]) * p


def build(run: Run, p: Params, event_id: str) -> Structural:
    city = run.city
    share = p.intensity * PEAK_SHARE
    if share < WARN_SHARE:
        raise ValueError(f"structural intensity {p.intensity} stays below {WARN_SHARE:.0%}")
    site = pick_device(city, p, "structural")
    window = Window.of(p.start_ms, p.duration_ms, rise_share=0.5, fall_share=0.2)
    crossings = []
    for _, base, allow in _METRICS:
        b, a = city.attrs[base][site], city.attrs[allow][site]
        crossings.append((WARN_SHARE * a - b) / (share * a - b))
    device = city.devices[site]
    truth = EventTruth(
        id=event_id, kind="structural", category="infrastructure",
        min_severity="red" if share >= 1 else "orange" if share >= 0.8 else "yellow",
        handler="city-management", teams=("field-maintenance",),
        districts=(device.district,), cells=(device.grid,), devices=ids(city, [site]),
        first_device=device.id, report_interval_s=interval_s(city, site), onset_ms=p.start_ms,
        start_ms=window.reaches_ms(min(max(min(crossings), 0.0), 1.0)), end_ms=window.end_ms,
        params={"intensity": p.intensity},
    )
    return Structural(truth, site, window, p.intensity)
