"""Out-of-range readings as faults: ``out_of_range(hold)`` raises, holds and clears; a faulty
sensor is heard (not stale); the engine agrees with the scalar reference throughout."""

from __future__ import annotations

from devices.batch import ReadingBatch
from rules.detection import DetectionState, Severity
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack, load_rules
from rules.oracles.engine import Reference
from tests.rules.conftest import small_registry

M = 60_000
F, C = DetectionState.FIRING, DetectionState.CLEARED
RULES = """
- {id: oor, category: device, match: {device_ids: wl-0}, when: out_of_range(15m), severity: blue}
- {id: offline, category: device, match: {device_ids: wl-0}, when: stale(20m)}
"""


def batch(*readings: tuple[int, int, float]) -> ReadingBatch:
    if not readings:
        return ReadingBatch.empty()
    slots, ts, values = zip(*readings, strict=True)
    return ReadingBatch.from_columns(slots, ts, values)


class Both:
    """The engine and the reference, fed alike; each call returns what both found (equal)."""

    def __init__(self, text: str = RULES) -> None:
        rules, registry = load_rules(text), small_registry()
        self.engine = Engine(rules, registry, detectors={})
        self.reference = Reference(rules, registry, detectors={})

    def evaluate(self, now_ms: int, readings: tuple = (), faults: tuple = ()) -> list[tuple]:
        got = self.engine.evaluate(batch(*readings), now_ms, batch(*faults))
        assert got == self.reference.evaluate(batch(*readings), now_ms, batch(*faults))
        return [(d.rule_id, d.state, d.ts_ms, d.value) for d in got]

    def tick(self, now_ms: int) -> list[tuple]:
        got = self.engine.tick(now_ms)
        assert got == self.reference.tick(now_ms)
        return [(d.rule_id, d.state, d.ts_ms, d.value) for d in got]


def test_a_glitch_is_one_alert_that_clears_after_the_hold_once_back_in_range() -> None:
    both = Both()
    assert both.evaluate(0, readings=[(0, 0, 1.0)]) == []
    assert both.evaluate(M, faults=[(0, M, 99.0)]) == [("oor", F, M, 99.0)]
    # more glitches and good readings within the hold: still the same one alert
    assert both.evaluate(2 * M, readings=[(0, 2 * M, 1.1)]) == []
    assert both.evaluate(5 * M, faults=[(0, 5 * M, -4.0), (0, 4 * M, 50.0)]) == []
    assert both.evaluate(6 * M, readings=[(0, 6 * M, 1.2)]) == []
    assert both.tick(19 * M) == []
    assert both.tick(20 * M) == [("oor", C, 20 * M, 1.2)]  # 15 min after the last fault


def test_a_sensor_sending_only_bad_values_stays_faulty_and_is_not_offline() -> None:
    both = Both()
    assert both.evaluate(0, readings=[(0, 0, 1.0)]) == []
    assert both.evaluate(M, faults=[(0, M, 99.0)]) == [("oor", F, M, 99.0)]
    for minute in range(5, 60, 5):
        assert both.evaluate(minute * M, faults=[(0, minute * M, 99.0)]) == []
    # the last fault is newer than the last good reading: the hold does not clear it
    assert both.tick(90 * M) == [("offline", F, 90 * M, 1.0)]  # heard last at 55 min
    # back in range, the hold long past: both clear at once
    assert both.evaluate(91 * M, readings=[(0, 91 * M, 1.0)]) == [
        ("oor", C, 91 * M, 1.0), ("offline", C, 91 * M, 1.0)]


def test_a_sensor_never_heard_in_range_raises_on_its_first_fault() -> None:
    both = Both()
    assert both.evaluate(0, faults=[(0, 0, 99.0), (99, 0, 1.0)]) == [("oor", F, 0, 99.0)]
    assert both.tick(60 * M) == []
    assert both.evaluate(61 * M, readings=[(0, 61 * M, 1.0)]) == [("oor", C, 61 * M, 1.0)]


def test_faults_survive_a_rebuild() -> None:
    engine = Engine(load_rules(RULES), small_registry(), detectors={})
    engine.evaluate(batch((0, 0, 1.0)), 0, batch((0, M, 99.0)))
    rebuilt = engine.rebuild(registry=small_registry())
    assert rebuilt.evaluate(batch((0, 2 * M, 1.0)), 2 * M) == []
    assert [(d.rule_id, d.state) for d in rebuilt.tick(16 * M)] == [("oor", C)]


def test_faults_survive_a_checkpoint_restore() -> None:
    engine = Engine(load_rules(RULES), small_registry(), detectors={})
    engine.evaluate(batch((0, 0, 1.0)), 0, batch((0, M, 99.0)))
    restored = Engine(load_rules(RULES), small_registry(), detectors={})
    restored.restore({name: array.copy() for name, array in engine.snapshot().items()})
    assert restored.evaluate(batch((0, 2 * M, 1.0)), 2 * M) == []
    assert [(d.rule_id, d.state) for d in restored.tick(16 * M)] == [("oor", C)]


def test_the_default_pack_reports_a_broken_sensor_as_a_device_fault() -> None:
    registry = small_registry()
    engine = Engine(load_default_pack(), registry)
    slot = registry.slot("wl-0", "level_m")
    assert slot is not None
    found = engine.evaluate(ReadingBatch.empty(), M, batch((slot, M, 99.0)))
    assert [(d.rule_id, d.category, d.severity, d.value) for d in found] == [
        ("sensor-out-of-range", "device", Severity.BLUE, 99.0)]
