"""Pollution episode: PM2.5 and PM10 rise across several neighbouring districts over hours.

The episode covers `place` (a district) and up to two districts beside it, each starting a
little later (it drifts across the city); every air-quality monitor there gains up to
180 ug/m3 PM2.5 x intensity (and PM10 by the monitor's PM10/PM2.5 ratio). Unlike one faulty
sensor it is regional: every monitor of those districts sees it. Hazard start: the first
monitor's 1-h mean PM2.5 exceeds 75 ug/m3 (HJ 633-2012 IAQI 100).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import DISTRICT_COLS, DISTRICT_NAMES, City
from simulators.scenarios.base import Params, Run, ids, in_districts, interval_s, of_type
from simulators.scenarios.frame import Frame, Window
from simulators.scenarios.truth import EventTruth
from simulators.signals import values

PEAK_PM25 = 180.0
LIGHT, HEAVY, SEVERE = 75.0, 150.0, 250.0  # 1-h mean breakpoints (yellow, orange, red)
DEFAULT_DURATION_MS = 8 * 3_600_000
LAG_SHARE = 0.08  # of the duration, per district further on
_MINUTE_MS, _HOUR_MS = 60_000, 3_600_000


@dataclass(frozen=True)
class Pollution:
    truth: EventTruth
    monitors: tuple[np.ndarray, ...]  # per district, in the order the episode reaches them
    windows: tuple[Window, ...]
    intensity: float

    def apply(self, city: City, frame: Frame) -> None:
        for monitors, window in zip(self.monitors, self.windows, strict=True):
            rows = frame.rows(monitors, window.start_ms, window.end_ms)
            added = self.intensity * PEAK_PM25 * window.profile(frame.ts_ms[rows])
            frame.values["pm25"][rows] += added
            frame.values["pm10"][rows] += added * city.attrs["pm10_ratio"][frame.dev[rows]]


def region(place: str) -> list[str]:
    """`place` and the districts east (or west) and south (or north) of it."""
    k = DISTRICT_NAMES.index(place)
    row, col = divmod(k, DISTRICT_COLS)
    side = col + 1 if col + 1 < DISTRICT_COLS else col - 1
    other_row = 1 - row
    return [place, DISTRICT_NAMES[row * DISTRICT_COLS + side],
            DISTRICT_NAMES[other_row * DISTRICT_COLS + col]]


def build(run: Run, p: Params, event_id: str) -> Pollution:
    city = run.city
    aq = of_type(city, "air_quality")
    if p.place is not None and p.place not in DISTRICT_NAMES:
        raise ValueError(f"place {p.place!r}: not a district of the simulated city")
    place = p.place or str(p.rng(1).choice(DISTRICT_NAMES))
    districts = [d for d in region(place) if len(in_districts(city, aq, {d}))]
    if not districts:
        raise ValueError(f"no air-quality monitor in or beside {place!r}")
    monitors = tuple(in_districts(city, aq, {d}) for d in districts)
    lag = int(LAG_SHARE * p.duration_ms)
    windows = tuple(Window.of(p.start_ms + k * lag, p.duration_ms - k * lag, 0.35, 0.35)
                    for k in range(len(districts)))
    scenario = Pollution(None, monitors, windows, p.intensity)  # type: ignore[arg-type]
    start_ms, first, peak = _hourly_means(city, scenario, windows[0])
    if first < 0:
        raise ValueError(f"pollution intensity {p.intensity}: no 1-h mean above {LIGHT}")
    devices = np.concatenate(monitors)
    truth = EventTruth(
        id=event_id, kind="pollution", category="environment",
        min_severity="red" if peak > SEVERE else "orange" if peak > HEAVY else "yellow",
        handler="environment-bureau", teams=("env-monitoring", "env-enforcement"),
        districts=tuple(districts),
        cells=tuple(sorted({city.devices[i].grid for i in devices})),
        devices=ids(city, devices), first_device=city.devices[first].id,
        report_interval_s=interval_s(city, first), onset_ms=p.start_ms, start_ms=start_ms,
        end_ms=max(w.end_ms for w in windows), params={"intensity": p.intensity},
    )
    return Pollution(truth, monitors, windows, p.intensity)


def _hourly_means(city: City, scenario: Pollution, window: Window) -> tuple[int, int, float]:
    """(when, which monitor) a 1-h mean first exceeds LIGHT, and the highest 1-h mean of the
    first district, on a one-minute grid of the episode's rise and hold."""
    monitors = scenario.monitors[0]
    grid = np.arange(window.start_ms - _HOUR_MS, window.end_ms - window.fall_ms, _MINUTE_MS)
    dev = np.repeat(monitors, len(grid))
    ts = np.tile(grid, len(monitors))
    frame = Frame.of(dev, ts, values(city, dev, ts))
    scenario.apply(city, frame)
    pm25 = frame.values["pm25"].reshape(len(monitors), len(grid))
    kernel = np.ones(60) / 60
    means = np.array([np.convolve(row, kernel, mode="valid") for row in pm25])
    above = means > LIGHT
    if not above.any():
        return 0, -1, float(means.max())
    steps = np.where(above.any(axis=1), above.argmax(axis=1), means.shape[1])
    k = int(steps.argmin())
    return int(grid[steps[k] + 59]), int(monitors[k]), float(means.max())
