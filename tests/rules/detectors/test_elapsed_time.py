"""Time constants follow elapsed time, and the seasonal baseline learns local hours across days.

Devices report at different and irregular intervals: a detector must forget at the same pace
whether a series reports every minute or every quarter hour.
"""

from __future__ import annotations

import numpy as np
import pytest

from rules.detectors import AnomalyLikelihood, Cusum, EwmaChart, SeasonalBaseline, StepChart
from rules.detectors.seasonal import N_CELLS, season_cell

MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def feed(detector: object, slot: int, ts_ms: np.ndarray, values: np.ndarray) -> None:
    s = np.array([slot], dtype=np.int64)
    for t, v in zip(ts_ms.tolist(), values.tolist(), strict=True):
        detector.update(s, np.array([t], dtype=np.int64), np.array([v]))  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", [lambda: EwmaChart(tau_s=6000.0), lambda: Cusum(tau_s=6000.0)],
                         ids=["ewma", "cusum"])
def test_a_level_shift_is_learned_at_the_same_pace_at_any_report_interval(make: object) -> None:
    """Two days at 0 then 100 minutes at 1: the mean moves as far every minute as every 5."""
    d = make()  # type: ignore[operator]
    d.grow(2)
    for slot, every_min in [(0, 1), (1, 5)]:
        quiet = np.arange(T0_MS, T0_MS + 2 * DAY_MS, every_min * MINUTE_MS)
        shifted = np.arange(quiet[-1] + every_min * MINUTE_MS, quiet[-1] + 100 * MINUTE_MS + 1,
                            every_min * MINUTE_MS)
        feed(d, slot, quiet, np.zeros(len(quiet)))
        feed(d, slot, shifted, np.ones(len(shifted)))
    assert d.mean[0] == pytest.approx(1 - np.exp(-1), abs=0.01)
    assert d.mean[1] == pytest.approx(d.mean[0], abs=0.01)


def test_the_step_chart_learns_steps_at_the_same_pace_at_any_report_interval() -> None:
    d = StepChart(tau_s=6000.0)
    d.grow(2)
    for slot, every_min in [(0, 1), (1, 5)]:
        ts = np.arange(T0_MS, T0_MS + DAY_MS, every_min * MINUTE_MS)
        feed(d, slot, ts, np.zeros(len(ts)))
        later = np.arange(ts[-1] + every_min * MINUTE_MS, ts[-1] + 100 * MINUTE_MS + 1,
                          every_min * MINUTE_MS)
        feed(d, slot, later, np.cumsum(np.full(len(later), 1.0)))  # steps of 1 per reading
    assert d.mean[0] == pytest.approx(d.mean[1], abs=0.01)


def test_the_refractory_period_is_a_time_not_a_number_of_readings() -> None:
    d = AnomalyLikelihood([EwmaChart(tau_s=3600.0)], warmup=10, refractory_s=3600.0)
    d.grow(1)
    s = np.zeros(1, dtype=np.int64)
    rng = np.random.default_rng(0)
    t = T0_MS
    for _ in range(300):
        t += 5 * MINUTE_MS
        d.score_and_update(s, np.array([t]), np.array([10.0 + rng.normal(0, 0.1)]))
    assert d.score_and_update(s, np.array([t + MINUTE_MS]), np.array([100.0]))[0] == 1.0
    quiet_at = [t + MINUTE_MS + m * MINUTE_MS for m in (1, 30, 59)]
    assert [float(d.score(s, np.array([q]), np.array([100.0]))[0]) for q in quiet_at] == [0.0] * 3
    assert d.score(s, np.array([t + 62 * MINUTE_MS]), np.array([100.0]))[0] == 1.0


def test_a_seasonal_cell_weighs_days_not_readings() -> None:
    """A cell seen every minute and one seen every quarter hour carry the same weight per day,
    and both speak only once ``warmup`` days are learned."""
    d = SeasonalBaseline(alpha=0.1, warmup=3)
    d.grow(2)
    s = [np.array([0]), np.array([1])]
    probe = np.array([T0_MS + 8 * HOUR_MS + 30 * MINUTE_MS])
    for day in range(4):  # Monday to Thursday, all day
        for slot, every_min in [(0, 1), (1, 15)]:
            ts = np.arange(T0_MS + day * DAY_MS, T0_MS + (day + 1) * DAY_MS,
                           every_min * MINUTE_MS)
            feed(d, slot, ts, 20.0 + np.sin(ts / 7e5))
        ready = [float(d.score(s[k], probe + (day + 1) * DAY_MS, np.array([40.0]))[0]) > 0
                 for k in (0, 1)]
        assert ready == [day >= 2] * 2, f"after day {day + 1}"
    cell = int(season_cell(probe)[0])
    masses = d.mass.reshape(2, N_CELLS)[:, cell]
    assert masses[0] == pytest.approx(1 - np.exp(-4 * 0.1), abs=0.005)  # 4 days, alpha 0.1
    assert masses[1] == pytest.approx(masses[0], abs=0.005)


def test_seasonal_cells_are_local_hours_of_the_city_time_zone_through_daylight_saving() -> None:
    winter = np.array([1_705_302_000_000])  # Monday 2024-01-15 08:00 in Berlin (07:00 UTC)
    summer = np.array([1_721_023_200_000])  # Monday 2024-07-15 08:00 in Berlin (06:00 UTC)
    assert season_cell(winter, "Europe/Berlin").tolist() == [8]
    assert season_cell(summer, "Europe/Berlin").tolist() == [8]
    assert season_cell(winter, "UTC").tolist() == [7]
    saturday = winter + 5 * DAY_MS
    assert season_cell(saturday, "Europe/Berlin").tolist() == [24 + 8]


def test_an_unknown_time_zone_is_refused_when_the_detector_is_built() -> None:
    with pytest.raises(Exception, match="Mars/Olympus"):
        SeasonalBaseline(timezone="Mars/Olympus")
