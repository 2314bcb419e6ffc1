"""rate(window): a least-squares slope over a covered window, so noise alone never fires it.

The shipped pack's rules of change (`fire-heat` on rate, `water-rise` on delta) against noisy
synthetic series: ordinary sensor noise raises nothing at any reporting pace, a real rise does.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detection import Detection, DetectionState
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack, load_rules

T0 = 1_795_000_000_000
S, M = 1_000, 60_000
REGISTRY = Registry.build(load_catalogue(), [
    Device("sm-0", "smoke", "north", 0.0, 0.0, grid="g-0-0"),
    Device("wl-0", "water_level", "north", 0.0, 0.0, grid="g-0-0"),
])


def _pack_rule(rule_id: str) -> Engine:
    return Engine([r for r in load_default_pack() if r.id == rule_id], REGISTRY)


def _feed(engine: Engine, device: str, metric: str, ts: np.ndarray, v: np.ndarray) -> list:
    slot = REGISTRY.slot(device, metric)
    found: list[Detection] = []
    for k in range(len(ts)):  # one reading per call: every reading is judged as it arrives
        batch = ReadingBatch.from_columns([slot], ts[k:k + 1], v[k:k + 1])
        found += engine.evaluate(batch, int(ts[k]))
    return [d for d in found if d.state == DetectionState.FIRING]


@pytest.mark.parametrize("every_s", [2, 10, 30, 60], ids=lambda s: f"every-{s}s")
def test_heat_detector_noise_never_fires_fire_heat(every_s: int) -> None:
    rng = np.random.default_rng(every_s)
    ts = T0 + np.arange(0, 2 * 3600, every_s) * S
    temp = 20 + rng.normal(0, 0.5, len(ts))  # more than the simulator's noise
    assert _feed(_pack_rule("fire-heat"), "sm-0", "temp_c", ts, temp) == []


def test_two_readings_seconds_apart_have_no_rate() -> None:
    """A 1 C jump in 2 s is 0.5 C/s between two points: no slope without a covered window."""
    ts = np.array([T0, T0 + 2 * S])
    assert _feed(_pack_rule("fire-heat"), "sm-0", "temp_c", ts, np.array([20.0, 21.0])) == []


def _fire(every_s: int) -> tuple[np.ndarray, list[Detection]]:
    """20 C for 10 min, then 10 C/min (above the pack's 8 C/min) with noise."""
    rng = np.random.default_rng(7)
    t_s = np.arange(0, 20 * 60, every_s)
    temp = 20 + np.maximum(t_s - 600, 0) / 6 + rng.normal(0, 0.5, len(t_s))
    return temp, _feed(_pack_rule("fire-heat"), "sm-0", "temp_c", T0 + t_s * S, temp)


def test_a_fire_heat_rise_fires_before_the_fixed_temperature() -> None:
    _, fired = _fire(30)  # the smoke type's report interval
    assert fired and fired[0].value < 45  # well before the 57 C fixed temperature
    assert T0 + 600 * S < fired[0].ts_ms <= T0 + 720 * S


def test_a_detector_reporting_faster_than_its_type_still_fires_at_the_fixed_temperature() -> None:
    """Rings hold a window at the type's report interval (30 s for smoke): at 10 s they keep
    50 s of readings, under half of rate(2m)'s window, so rate has no value there."""
    temp, fired = _fire(10)
    first_hot = int(np.argmax(temp >= 57))
    assert [d.ts_ms for d in fired][:1] == [T0 + first_hot * 10 * S]


def test_river_noise_never_fires_water_rise_and_a_flash_rise_does() -> None:
    rng = np.random.default_rng(3)
    t_s = np.arange(0, 4 * 3600, 60)
    level = 1.5 + 0.05 * np.sin(t_s / 3600) + rng.normal(0, 0.02, len(t_s))
    engine = _pack_rule("water-rise")
    assert _feed(engine, "wl-0", "level_m", T0 + t_s * S, level) == []
    rise_s = t_s[-1] + np.arange(60, 20 * 60, 60)
    risen = level[-1] + 0.06 * np.arange(1, len(rise_s) + 1) + rng.normal(0, 0.02, len(rise_s))
    fired = _feed(engine, "wl-0", "level_m", T0 + rise_s * S, risen)
    assert [d.rule_id for d in fired] == ["water-rise"]


def _slope_engine(low: float, high: float) -> Engine:
    rule = (f"- {{id: r, category: flood, match: {{device_ids: wl-0}}, "
            f"when: rate(2m) > {low} and rate(2m) < {high}}}")
    return Engine(load_rules(rule), REGISTRY)


def test_rate_is_the_least_squares_slope_per_second() -> None:
    ts = T0 + np.array([0, 20, 40, 60]) * S
    v = np.array([0.0, 3.0, 3.0, 3.0])  # end points: 0.05 /s; least squares: 90 / 2000
    fitted = _feed(_slope_engine(0.0449, 0.0451), "wl-0", "level_m", ts, v)
    assert [d.ts_ms for d in fitted] == [T0 + 60 * S]
    assert _feed(_slope_engine(0.0499, 0.0501), "wl-0", "level_m", ts, v) == []


@pytest.mark.parametrize(("t_s", "fires"), [
    ([0, 20, 40, 60], True),
    ([0, 70], False),  # two readings
    ([0, 10, 20, 30], False),  # four readings over a quarter of the window
], ids=["covered", "two-readings", "short-span"])
def test_rate_needs_three_readings_over_half_the_window(t_s: list[int], fires: bool) -> None:
    ts = T0 + np.array(t_s) * S
    v = np.arange(len(t_s), dtype=float)  # a steep rise
    assert bool(_feed(_slope_engine(0.0, 1e9), "wl-0", "level_m", ts, v)) == fires
