"""The shipped pack judges each noise monitor by the GB 3096-2008 limits of its own zone."""

from __future__ import annotations

import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detection import DetectionState, Severity
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack

MONDAY_MS = 1731859200000  # 00:00 in UTC+8, the engine's default local time
M = 60_000
CASES = [  # zone (None: no attribute), local hour, LAeq held 10 min, severity raised
    (4.0, 14, 68.0, None), (4.0, 14, 71.0, Severity.YELLOW), (4.0, 23, 56.0, Severity.YELLOW),
    (4.0, 23, 54.0, None), (4.5, 23, 58.0, None), (4.5, 23, 61.0, Severity.YELLOW),
    (1.0, 14, 56.0, Severity.YELLOW), (1.0, 3, 44.0, None), (1.0, 3, 61.0, Severity.ORANGE),
    (0.0, 3, 41.0, Severity.YELLOW), (3.0, 14, 64.0, None), (3.0, 5, 56.0, Severity.YELLOW),
    (None, 14, 59.0, None), (None, 14, 61.0, Severity.YELLOW), (None, 23, 51.0, Severity.YELLOW),
    (None, 23, 66.0, Severity.ORANGE),
]


@pytest.mark.parametrize(("zone", "hour", "laeq", "raised"), CASES,
                         ids=[f"zone{z}-{h}h-{v}dB" for z, h, v, _ in CASES])
def test_a_monitor_is_judged_by_its_zone_day_and_night(
    zone: float | None, hour: int, laeq: float, raised: Severity | None
) -> None:
    attributes = {} if zone is None else {"noise_zone": zone}
    registry = Registry.build(load_catalogue(), [
        Device("ns-0", "noise", "north", 0.0, 0.0, grid="g-0-0", attributes=attributes)])
    rules = [r for r in load_default_pack() if r.id == "noise-limit"]
    engine = Engine(rules, registry, attributes=registry.attributes())
    t0 = MONDAY_MS + hour * 60 * M
    ts = [t0 + k * M for k in range(10)]
    slot = registry.slot("ns-0", "laeq_db")
    found = engine.evaluate(ReadingBatch.from_columns([slot] * 10, ts, [laeq] * 10), ts[-1])
    fired = [d.severity for d in found if d.state == DetectionState.FIRING]
    assert fired == ([] if raised is None else [raised])
