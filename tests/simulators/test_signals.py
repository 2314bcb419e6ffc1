"""Signal models: valid ranges, daily and weekly patterns, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.city import City, build_city
from simulators.signals import values

# Monday 2024-11-18 00:00 in the city's time zone (UTC+8).
MONDAY_MS = 1731859200000
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
CITY = build_city(150, seed=11)


def _of_type(city: City, type_name: str) -> np.ndarray:
    return np.flatnonzero(np.array([d.type for d in city.devices]) == type_name)


def _mean_at(type_name: str, metric: str, hour: float, days: range = range(5)) -> float:
    """Mean of `metric` over the type's devices at `hour` local on the given days after Monday."""
    dev = _of_type(CITY, type_name)
    ts = np.array([MONDAY_MS + d * DAY_MS + int(hour * HOUR_MS) for d in days])
    grid_dev, grid_ts = np.meshgrid(dev, ts)
    return float(values(CITY, grid_dev.ravel(), grid_ts.ravel())[metric].mean())


def test_every_value_is_finite_and_in_range_for_a_week() -> None:
    n = len(CITY.devices)
    ts = MONDAY_MS + np.arange(0, 7 * DAY_MS, 20 * 60_000)
    dev = np.tile(np.arange(n), len(ts))
    out = values(CITY, dev, np.repeat(ts, n))
    types = np.array([d.type for d in CITY.devices])[dev]
    for type_name, spec in CITY.catalogue.items():
        rows = types == type_name
        for metric in out:
            column = out[metric][rows]
            if metric in spec.metrics:
                m = spec.metrics[metric]
                assert np.all(np.isfinite(column)), (type_name, metric)
                assert column.min() >= m.min and column.max() <= m.max, (type_name, metric)
            else:
                assert np.all(np.isnan(column)), (type_name, metric)


def test_weekday_rush_hour_is_slow_and_busy() -> None:
    assert _mean_at("traffic_flow", "speed_kmh", 8) < 0.7 * _mean_at("traffic_flow", "speed_kmh", 3)
    assert _mean_at("traffic_flow", "flow_vph", 18) > 3 * _mean_at("traffic_flow", "flow_vph", 3)
    busy = _mean_at("traffic_flow", "occupancy_pct", 8)
    assert busy > 2 * _mean_at("traffic_flow", "occupancy_pct", 2)


def test_weekend_morning_has_no_rush_hour() -> None:
    weekend_speed = _mean_at("traffic_flow", "speed_kmh", 8, range(5, 7))
    assert weekend_speed > _mean_at("traffic_flow", "speed_kmh", 8)


def test_night_is_quieter_than_day() -> None:
    assert _mean_at("noise", "laeq_db", 2) + 5 < _mean_at("noise", "laeq_db", 14)


def test_diurnal_cycles_of_air_and_weather() -> None:
    days = range(14)
    assert _mean_at("air_quality", "pm25", 6, days) > _mean_at("air_quality", "pm25", 16, days)
    assert _mean_at("air_quality", "o3", 15, days) > _mean_at("air_quality", "o3", 3, days)
    assert _mean_at("weather", "temp_c", 15, days) > _mean_at("weather", "temp_c", 5, days) + 5
    humid = _mean_at("weather", "humidity_pct", 5, days)
    assert _mean_at("weather", "humidity_pct", 15, days) < humid


def test_pollutants_are_correlated() -> None:
    dev = _of_type(CITY, "air_quality")
    ts = MONDAY_MS + np.arange(0, 7 * DAY_MS, HOUR_MS)
    out = values(CITY, np.tile(dev, len(ts)), np.repeat(ts, len(dev)))
    assert np.corrcoef(out["pm25"], out["pm10"])[0, 1] > 0.8
    assert np.corrcoef(out["pm25"], out["co"])[0, 1] > 0.8


def test_rain_is_mostly_zero_with_showers() -> None:
    dev = _of_type(CITY, "rain_gauge")
    ts = MONDAY_MS + np.arange(0, 30 * DAY_MS, 10 * 60_000)
    rain = values(CITY, np.tile(dev, len(ts)), np.repeat(ts, len(dev)))["rain_mm_h"]
    assert 0.6 < np.mean(rain == 0) < 0.99
    assert rain.max() > 10


def test_safety_sensors_rest_quietly() -> None:
    ts = MONDAY_MS + np.arange(0, DAY_MS, 10 * 60_000)
    for type_name, metric, low, high in [
        ("gas", "lel_pct", 0, 2),
        ("smoke", "obscuration_pct_m", 0, 0.1),
        ("smoke", "temp_c", 15, 30),
        ("manhole", "cover_open", 0, 0),
        ("structural", "tilt_deg", -0.2, 0.2),
    ]:
        dev = _of_type(CITY, type_name)
        column = values(CITY, np.tile(dev, len(ts)), np.repeat(ts, len(dev)))[metric]
        assert low <= column.min() and column.max() <= high, (type_name, metric)


def test_water_levels_vary_slowly_below_warning() -> None:
    dev = _of_type(CITY, "water_level")
    ts = MONDAY_MS + np.arange(0, 2 * DAY_MS, 60_000)
    level = values(CITY, np.repeat(dev, len(ts)), np.tile(ts, len(dev)))["level_m"]
    level = level.reshape(len(dev), len(ts))
    assert np.all(level.max(axis=1) < CITY.attrs["warning_level_m"][dev])
    assert np.abs(np.diff(level, axis=1)).max() < 0.05  # per minute
    assert np.all(level.max(axis=1) - level.min(axis=1) > 0.02)


def test_values_do_not_depend_on_batching() -> None:
    dev = np.arange(len(CITY.devices))
    ts = MONDAY_MS + dev * 1000
    whole = values(CITY, dev, ts)
    halves = [values(CITY, dev[:70], ts[:70]), values(CITY, dev[70:], ts[70:])]
    for metric, column in whole.items():
        joined = np.concatenate([h[metric] for h in halves])
        np.testing.assert_array_equal(column, joined)


@pytest.mark.parametrize("seed", [11, 12], ids=["same-seed", "other-seed"])
def test_values_are_a_function_of_the_seed(seed: int) -> None:
    other = build_city(150, seed=seed)
    dev = _of_type(CITY, "noise")
    a = values(CITY, dev, MONDAY_MS)["laeq_db"]
    b = values(other, dev, MONDAY_MS)["laeq_db"]
    assert np.array_equal(a, b) == (seed == 11)
