"""The shipped pack's rainstorm rule: a storm's rain raises it; one glitch reading, or a gauge
stuck at a rainy value, does not (the stuck gauge is reported as a device fault)."""

from __future__ import annotations

import numpy as np

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detection import DetectionState
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack

MIN = 60_000
REGISTRY = Registry.build(load_catalogue(), [Device("rg-1", "rain_gauge", "d1", 39.9, 116.4)])
SLOT = REGISTRY.slot("rg-1", "rain_mm_h")


def _changes(rain_mm_h: np.ndarray, rule_id: str) -> list[tuple[int, DetectionState]]:
    """(minute, state) of each change of `rule_id` on a fresh gauge reporting once a minute."""
    engine = Engine(load_default_pack(), REGISTRY, attributes=REGISTRY.attributes())
    changes = []
    for k, value in enumerate(rain_mm_h):
        batch = ReadingBatch.from_columns([SLOT], [k * MIN], [float(value)])
        changes += [(k, d.state) for d in engine.evaluate(batch, k * MIN) if d.rule_id == rule_id]
    return changes


def _firing(rain_mm_h: np.ndarray, rule_id: str = "rainstorm") -> list[int]:
    """Minutes at which `rule_id` starts firing."""
    return [k for k, state in _changes(rain_mm_h, rule_id) if state is DetectionState.FIRING]


def _storm(minutes: int, mm_h: float) -> np.ndarray:
    """Rain around `mm_h`, varying from minute to minute as storm rain does."""
    return mm_h * (1 + 0.1 * np.random.default_rng(5).standard_normal(minutes))


def test_one_glitch_reading_of_a_young_gauge_is_not_a_rainstorm() -> None:
    dry = np.zeros(240)
    dry[20] = 450.0  # a spike at the gauge's 21st reading: a "3-h mean" of 450 / 21 = 21.4
    assert _firing(dry) == []


def test_heavy_rain_is_a_rainstorm_once_50_mm_fell_in_3_hours() -> None:
    rain = np.r_[np.zeros(180), _storm(240, 20.0)]  # 3 dry hours, then about 20 mm/h
    fired = _firing(rain)
    # 50 mm in 3 h: the 3-h mean of 180 readings holds ~151 of ~20 mm/h (16.7 / 20 x 180)
    assert len(fired) == 1 and 180 + 140 <= fired[0] <= 180 + 160
    assert _firing(rain, "device-stuck-rain") == []


def test_a_gauge_stuck_in_the_rain_is_a_device_fault_not_a_rainstorm() -> None:
    # an hour of light rain, then the gauge freezes at a downpour's 27 mm/h for three hours
    rain = np.r_[_storm(60, 5.0), np.full(180, 27.0)]
    assert _firing(rain) == []
    assert _firing(rain, "device-stuck-rain") == [60 + 30]
    assert _firing(np.zeros(240), "device-stuck-rain") == []  # dry weather reads 0 for days


def test_a_new_gauge_stuck_from_its_first_reading_has_its_rainstorm_withdrawn() -> None:
    # heavy rain from a new gauge is a storm as far as anyone can tell; half an hour of the
    # same value is a stuck gauge, and the warning it raised is withdrawn
    stuck = np.full(60, 27.4)
    assert _changes(stuck, "rainstorm") == [(0, DetectionState.FIRING),
                                             (30, DetectionState.CLEARED)]
    assert _firing(stuck, "device-stuck-rain") == [30]
