"""The shipped pack's rainstorm rule: a storm's rain raises it, one glitch reading does not."""

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


def _rainstorm_firing(rain_mm_h: np.ndarray) -> list[int]:
    """Minutes (of a fresh gauge reporting once a minute) at which `rainstorm` starts firing."""
    engine = Engine(load_default_pack(), REGISTRY, attributes=REGISTRY.attributes())
    fired = []
    for k, value in enumerate(rain_mm_h):
        batch = ReadingBatch.from_columns([SLOT], [k * MIN], [float(value)])
        fired += [k for d in engine.evaluate(batch, k * MIN)
                  if d.rule_id == "rainstorm" and d.state is DetectionState.FIRING]
    return fired


def test_one_glitch_reading_of_a_young_gauge_is_not_a_rainstorm() -> None:
    dry = np.zeros(240)
    dry[20] = 450.0  # a spike at the gauge's 21st reading: a "3-h mean" of 450 / 21 = 21.4
    assert _rainstorm_firing(dry) == []


def test_heavy_rain_is_a_rainstorm_once_50_mm_fell_in_3_hours() -> None:
    rain = np.r_[np.zeros(180), np.full(240, 20.0)]  # 3 dry hours, then 20 mm/h
    # 50 mm in 3 h: the 3-h mean of 180 readings holds 151 of 20 mm/h (16.78 >= 16.7)
    assert _rainstorm_firing(rain) == [180 + 150]
