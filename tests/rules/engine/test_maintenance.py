"""A device in maintenance is judged by no rule; back in service, its staleness starts afresh.

A rebuild lists the devices it stopped judging, so their open alerts can be closed."""

from __future__ import annotations

from dataclasses import replace

from devices.batch import ReadingBatch
from devices.registry import DeviceStatus, Registry
from rules.detection import DetectionState
from rules.engine.engine import Engine
from rules.language.loader import load_rules
from tests.rules.conftest import small_registry

M = 60_000
F = DetectionState.FIRING
RULES = load_rules("""
- {id: offline, category: device, match: {device_ids: wl-0}, when: stale(10m)}
- {id: high, category: flood, match: {device_ids: wl-0}, when: value > 2}
""")


def with_status(registry: Registry, status: DeviceStatus) -> Registry:
    device = registry.get("wl-0")
    assert device is not None
    return registry.updated([replace(device, status=status)])


def reading(registry: Registry, ts_ms: int, value: float) -> ReadingBatch:
    return ReadingBatch.from_columns([registry.slot("wl-0", "level_m")], [ts_ms], [value])


def fired(detections) -> list[tuple[str, int]]:
    return [(d.rule_id, d.ts_ms) for d in detections if d.state is F]


def test_a_device_in_maintenance_raises_nothing_and_is_judged_afresh_on_return():
    active = small_registry()
    engine = Engine(RULES, active, detectors={})
    assert fired(engine.evaluate(reading(active, 0, 1.0), 0)) == []
    away = with_status(active, DeviceStatus.MAINTENANCE)
    engine = engine.rebuild(registry=away, now_ms=M)
    assert fired(engine.evaluate(reading(away, 2 * M, 9.0), 2 * M)) == []  # a red value
    assert fired(engine.tick(60 * M)) == []  # silent far past its stale window
    back = with_status(away, DeviceStatus.ACTIVE)
    engine = engine.rebuild(registry=back, now_ms=60 * M)
    assert fired(engine.tick(65 * M)) == []  # staleness counts from the return ...
    assert fired(engine.tick(70 * M)) == [("offline", 70 * M)]  # ... not from its last reading
    assert fired(engine.evaluate(reading(back, 71 * M, 9.0), 71 * M)) == [("high", 71 * M)]


def test_a_device_that_never_reported_stays_unjudged_after_maintenance():
    active = small_registry()
    away = with_status(active, DeviceStatus.MAINTENANCE)
    engine = Engine(RULES, active, detectors={}).rebuild(registry=away, now_ms=0)
    engine = engine.rebuild(registry=with_status(away, DeviceStatus.ACTIVE), now_ms=M)
    assert fired(engine.tick(60 * M)) == []


def test_a_rebuild_lists_the_devices_that_left_service():
    active = small_registry()
    engine = Engine(RULES, active, detectors={})
    assert engine.rebuild(registry=active, now_ms=0).left_service == ()
    away = with_status(active, DeviceStatus.MAINTENANCE)
    engine = engine.rebuild(registry=away, now_ms=M)
    assert engine.left_service == ("wl-0",)
    retired = with_status(away, DeviceStatus.RETIRED)
    assert engine.rebuild(registry=retired, now_ms=2 * M).left_service == ()  # already out
    back = engine.rebuild(registry=with_status(away, DeviceStatus.ACTIVE), now_ms=3 * M)
    assert back.left_service == ()
    assert back.rebuild(registry=retired, now_ms=4 * M).left_service == ("wl-0",)
