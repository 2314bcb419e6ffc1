"""The shipped pack sees a simulated traffic accident within two report intervals (pure: the
scenario's readings go straight into the engine, as `urbanwatch serve` judges them)."""

from __future__ import annotations

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import DetectionState, Severity
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack
from simulators.city import build_city
from simulators.scenarios.base import Run
from simulators.scenarios.plan import build_scenarios
from simulators.scenarios.truth import EventTruth
from simulators.timed import Schedule, frames

CITY = build_city(250, seed=3)
REGISTRY = Registry.build(CITY.catalogue, CITY.devices)
MONDAY_MS = 1731859200000  # 2024-11-18 00:00 local (UTC+8)
HOUR_MS = 3_600_000
STEP_MS = 60_000  # one judging round a minute, as often as a road sensor reports


def _first_traffic_detection(start_h: float, seed: int) -> tuple[EventTruth, int, Severity]:
    """(the accident's truth, when the first traffic rule fired on its first sensor, severity)."""
    run = Run(CITY, MONDAY_MS + int(start_h * HOUR_MS), 2 * HOUR_MS, seed=seed)
    (scenario,) = build_scenarios(run, [f"traffic_accident:start=70m,seed={seed}"])
    truth = scenario.truth
    assert isinstance(truth, EventTruth)
    engine = Engine(load_default_pack(), REGISTRY, attributes=REGISTRY.attributes())
    schedule = Schedule.of(CITY, run)
    next_ms = schedule.first_ms.copy()
    for until in range(run.start_ms + STEP_MS, run.end_ms + 1, STEP_MS):
        slots, ts, got = [], [], []
        while (frame := frames(CITY, run, [scenario], until, next_ms, schedule, 50_000)):
            for metric, column in frame.values.items():
                slot = np.array([REGISTRY.slot(CITY.devices[int(i)].id, metric)
                                 if metric in CITY.catalogue[CITY.devices[int(i)].type].metrics
                                 else -1 for i in frame.dev])
                has = slot >= 0
                slots.append(slot[has]), ts.append(frame.ts_ms[has]), got.append(column[has])
        batch = ReadingBatch.from_columns(np.concatenate(slots), np.concatenate(ts),
                                          np.concatenate(got))
        for d in engine.evaluate(batch, until - 1):
            if (d.category.value == "traffic" and d.state is DetectionState.FIRING
                    and d.device_id == truth.first_device):
                return truth, d.ts_ms, d.severity
    raise AssertionError("the accident was never detected on its first sensor")


@pytest.mark.parametrize(("start_h", "seed"), [(11, 1), (13, 2), (21, 3)],
                         ids=["late-morning", "afternoon", "evening"])
def test_an_accident_is_raised_within_two_report_intervals_of_the_speed_halving(
    start_h: float, seed: int
) -> None:
    truth, fired_ms, severity = _first_traffic_detection(start_h, seed)
    assert truth.start_ms <= fired_ms <= truth.start_ms + 2 * truth.report_interval_s * 1000
    assert severity >= Severity.YELLOW
