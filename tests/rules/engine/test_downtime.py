"""The platform's own downtime is no device's silence: after a restart, ``stale`` counts only
the time the platform listened, so a long stop does not find the whole city offline, while a
device already silent before the stop stays as silent as it was."""

from __future__ import annotations

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import DetectionState
from rules.engine.engine import Engine
from rules.engine.restore import OpenAlert, seed_downtime, seed_last_readings, seed_open_alerts
from rules.language.loader import load_rules
from tests.rules.conftest import small_registry

M = 60_000
RULES = load_rules("""
- {id: offline, category: device, match: {device_type: water_level}, when: stale(10m)}
""")
STOP, BACK = 100 * M, 130 * M  # a 30-minute downtime


def readings(registry: Registry, ts_ms: dict[str, int]) -> ReadingBatch:
    slots = [registry.slot(d, "level_m") for d in ts_ms]
    return ReadingBatch.from_columns(slots, list(ts_ms.values()), [1.0] * len(ts_ms))


def restarted(registry: Registry, last: dict[str, int], resumed_ms: int | None,
              firing: tuple[str, ...] = ()) -> Engine:
    """A fresh engine seeded as the platform does at start, the platform away from `STOP`."""
    engine = Engine(RULES, registry, detectors={})
    batch = readings(registry, last)
    seed_last_readings(engine, batch.slot, batch.ts_ms, batch.value)
    seed_open_alerts(engine, [OpenAlert("offline", d, d, "level_m", True, 2, last[d] + 10 * M)
                              for d in firing])
    seed_downtime(engine, STOP, resumed_ms)
    return engine


def changes(detections) -> list[tuple[str, DetectionState, int]]:
    return sorted((d.subject, d.state, d.ts_ms) for d in detections)


def test_silence_counts_only_while_the_platform_listened():
    registry = small_registry()
    engine = restarted(registry, {"wl-0": STOP - 3 * M, "wl-1": STOP - 9 * M}, BACK)
    assert changes(engine.tick(BACK)) == []  # 33 and 39 minutes since their last readings
    assert changes(engine.tick(BACK + M)) == [("wl-1", DetectionState.FIRING, BACK + M)]
    assert changes(engine.tick(BACK + 6 * M)) == []
    assert changes(engine.tick(BACK + 7 * M)) == [("wl-0", DetectionState.FIRING, BACK + 7 * M)]


def test_a_device_silent_before_the_stop_stays_offline_and_clears_when_heard():
    registry = small_registry()
    engine = restarted(registry, {"wl-0": STOP - 20 * M}, BACK, firing=("wl-0",))
    assert changes(engine.tick(BACK)) == []  # no clear: it was silent while listened to
    assert changes(engine.evaluate(readings(registry, {"wl-0": BACK + M}), BACK + M)) == [
        ("wl-0", DetectionState.CLEARED, BACK + M)]


def test_without_the_downtime_a_restart_finds_every_device_offline():
    registry = small_registry()
    engine = Engine(RULES, registry, detectors={})
    batch = readings(registry, {"wl-0": STOP - 3 * M})
    seed_last_readings(engine, batch.slot, batch.ts_ms, batch.value)
    assert changes(engine.tick(BACK)) == [("wl-0", DetectionState.FIRING, BACK)]


def test_a_downtime_left_open_ends_at_the_first_judged_batch():
    """Following the readings' clock, the platform knows when it listens again only when the
    readings come back; until then no silence grows, whatever the ticks say."""
    registry = small_registry()
    engine = restarted(registry, {"wl-0": STOP - 3 * M, "wl-1": STOP - 3 * M}, None)
    assert changes(engine.tick(STOP + 500 * M)) == []
    engine.evaluate(readings(registry, {"wl-0": BACK}), BACK)  # the city is back at BACK
    assert changes(engine.tick(BACK + 6 * M)) == []
    assert changes(engine.tick(BACK + 7 * M)) == [("wl-1", DetectionState.FIRING, BACK + 7 * M)]


def test_a_rebuild_keeps_the_downtime():
    registry = small_registry()
    engine = restarted(registry, {"wl-0": STOP - 3 * M}, BACK).rebuild(now_ms=BACK)
    assert changes(engine.tick(BACK + M)) == []
    assert changes(engine.tick(BACK + 7 * M)) == [("wl-0", DetectionState.FIRING, BACK + 7 * M)]


def test_a_second_restart_soon_after_a_long_stop_remembers_the_first_downtime():
    registry = small_registry()
    engine = restarted(registry, {"wl-0": STOP - 3 * M}, BACK)
    engine.tick(BACK + 2 * M)
    again = Engine(RULES, registry, detectors={})  # restarted 2 minutes after the first start
    batch = readings(registry, {"wl-0": STOP - 3 * M})
    seed_last_readings(again, batch.slot, batch.ts_ms, batch.value)
    seed_downtime(again, BACK + 2 * M, BACK + 3 * M, earlier=engine.ctx.series.downtimes)
    assert changes(again.tick(BACK + 3 * M)) == []  # listened 3 + 2 minutes since its reading
    assert changes(again.tick(BACK + 8 * M)) == [("wl-0", DetectionState.FIRING, BACK + 8 * M)]


def test_a_downtime_older_than_the_longest_stale_window_is_dropped():
    registry = small_registry()
    engine = Engine(RULES, registry, detectors={})
    batch = readings(registry, {"wl-0": STOP - 3 * M, "wl-1": 0})
    seed_last_readings(engine, batch.slot, batch.ts_ms, batch.value)
    seed_downtime(engine, STOP, BACK, earlier=[(M, 2 * M), (STOP - 15 * M, STOP - 5 * M)])
    assert engine.ctx.series.downtimes == [(STOP - 15 * M, STOP - 5 * M), (STOP, BACK)]
    assert changes(engine.tick(BACK)) == [("wl-1", DetectionState.FIRING, BACK)]  # long silent
    assert changes(engine.tick(BACK + 7 * M)) == [("wl-0", DetectionState.FIRING, BACK + 7 * M)]
