"""Flood / waterlogging: a district's rain gauges rise, then its low cells' water levels rise
one after another past their gauges' warning levels, then recede.

Rain peaks at 45 mm/h x intensity over the whole event (a rainstorm: 3-h mean >= 16.7 mm/h).
Up to three low cells (cells of the district with water-level gauges) flood in turn, each
gauge rising to 0.3 m x intensity above its warning level. Hazard start: the first gauge
comes within 0.2 m of its warning level (MWR blue: approaching the warning level) or the
rain's 3-h mean reaches 16.7 mm/h (CMA orange rainstorm) or a gauge rises 0.3 m in 10 min,
whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.scenarios.base import Params, Run, ids, in_districts, interval_s, of_type
from simulators.scenarios.frame import Frame, Window
from simulators.scenarios.truth import EventTruth
from simulators.signals import noise

PEAK_RAIN_MM_H = 45.0
RAIN_WOBBLE = 0.1  # storm rain varies from minute to minute (a gauge stuck in the rain does not)
ABOVE_WARNING_M = 0.3
APPROACH_M = 0.2
LOW_CELLS = 3
FLASH_RISE_M, FLASH_WINDOW_MS = 0.3, 10 * 60_000  # practice: 0.3 m in 10 min
RAINSTORM_MM_H = 16.7  # a 3-h mean: CMA orange, 50 mm in 3 h
_MINUTE_MS, _THREE_HOURS_MS = 60_000, 3 * 3_600_000
DEFAULT_DURATION_MS = 4 * 3_600_000


@dataclass(frozen=True)
class Flood:
    truth: EventTruth
    rain_gauges: np.ndarray
    gauges: np.ndarray
    rain: Window
    rises: tuple[Window, ...]  # one per gauge
    intensity: float
    seed: int  # of the rain's minute-to-minute variation

    def apply(self, city: City, frame: Frame) -> None:
        rows = frame.rows(self.rain_gauges, self.rain.start_ms, self.rain.end_ms)
        rain = frame.values["rain_mm_h"]
        ts = frame.ts_ms[rows]
        wobble = 1 + RAIN_WOBBLE * noise(self.seed, 43, frame.dev[rows], ts)
        rain[rows] += self.intensity * PEAK_RAIN_MM_H * self.rain.profile(ts) * wobble
        level = frame.values["level_m"]
        for gauge, window in zip(self.gauges.tolist(), self.rises, strict=True):
            rows = frame.rows(np.array([gauge]), window.start_ms, window.end_ms)
            level[rows] += _rise_m(city, gauge, self.intensity) * window.profile(frame.ts_ms[rows])


def _rise_m(city: City, gauge: int, intensity: float) -> float:
    a = city.attrs
    return float(a["warning_level_m"][gauge] + intensity * ABOVE_WARNING_M
                 - a["level_base_m"][gauge])


def _rainstorm_ms(rain: Window, intensity: float) -> int:
    """When the injected rain's 3-h mean first reaches 16.7 mm/h (a minute grid; the event's
    end if it never does)."""
    grid = np.arange(rain.start_ms - _THREE_HOURS_MS, rain.end_ms, _MINUTE_MS)
    mm_h = intensity * PEAK_RAIN_MM_H * rain.profile(grid)
    means = np.convolve(mm_h, np.ones(180) / 180, mode="valid")
    hits = np.flatnonzero(means >= RAINSTORM_MM_H)
    return int(grid[hits[0] + 179]) if len(hits) else rain.end_ms


def _flash_rise_ms(rise: Window, rise_m: float) -> int:
    """When the gauge has risen more than 0.3 m in 10 min (a flash rise), if it rises that
    fast at all; else the window's end."""
    per_10_min = rise_m * FLASH_WINDOW_MS / max(rise.rise_ms, 1)
    return rise.start_ms + FLASH_WINDOW_MS if per_10_min > FLASH_RISE_M else rise.end_ms


def build(run: Run, p: Params, event_id: str) -> Flood:
    city = run.city
    water = of_type(city, "water_level")
    if p.place is not None:
        if p.place not in {d.id for d in city.districts}:
            raise ValueError(f"place {p.place!r}: not a district of the simulated city")
        district = p.place
    else:
        with_gauges = sorted({city.devices[i].district for i in water})
        if not with_gauges:
            raise ValueError("the simulated city has no water-level gauge")
        district = str(p.rng(1).choice(with_gauges))
    gauges_here = in_districts(city, water, {district})
    if len(gauges_here) == 0:
        raise ValueError(f"district {district!r} has no water-level gauge")
    cells = sorted({city.devices[i].grid for i in gauges_here})
    low = [str(c) for c in p.rng(2).permutation(cells)[:LOW_CELLS]]
    gauges = np.array([i for c in low for i in gauges_here if city.devices[i].grid == c],
                      dtype=np.int64)
    rain_gauges = in_districts(city, of_type(city, "rain_gauge"), {district})
    d = p.duration_ms
    rain = Window.of(p.start_ms, d, rise_share=0.2, fall_share=0.3)
    rises = tuple(
        Window(p.start_ms + int((0.15 + 0.08 * k) * d), p.start_ms + d, int(0.3 * d),
               int(0.25 * d))
        for k in range(len(gauges))
    )
    first = int(gauges[0])
    approach = (city.attrs["warning_level_m"][first] - APPROACH_M
                - city.attrs["level_base_m"][first]) / _rise_m(city, first, p.intensity)
    guaranteed = city.attrs["guaranteed_level_m"][gauges]
    peak = city.attrs["warning_level_m"][gauges] + p.intensity * ABOVE_WARNING_M
    devices = [*rain_gauges.tolist(), *gauges.tolist()]
    # a 3-h mean of at least 16.7 mm/h (CMA orange) needs that much rain for long enough
    rainstorm = len(rain_gauges) > 0 and p.intensity >= 1 and d >= 3 * 3_600_000
    truth = EventTruth(
        id=event_id, kind="flood", category="flood",
        min_severity="orange" if np.any(peak >= guaranteed) or rainstorm else "yellow",
        handler="water-authority", teams=("drainage-crew", "flood-control"),
        districts=(district,), cells=tuple(sorted(low)), devices=ids(city, devices),
        first_device=city.devices[first].id, report_interval_s=interval_s(city, first),
        onset_ms=p.start_ms,
        start_ms=min(rises[0].reaches_ms(float(np.clip(approach, 0, 1))),
                     _rainstorm_ms(rain, p.intensity) if len(rain_gauges) else p.start_ms + d,
                     _flash_rise_ms(rises[0], _rise_m(city, first, p.intensity))),
        end_ms=p.start_ms + d, params={"intensity": p.intensity, "rain_gauges": len(rain_gauges)},
    )
    return Flood(truth, rain_gauges, gauges, rain, rises, p.intensity, p.seed)
