"""`Engine.snapshot` / `Engine.restore`: a restarted engine continues as if it never stopped,
applying only what still fits (by series identity, rule and detector definition)."""

from __future__ import annotations

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.registry import Device, Registry
from rules.detection import DetectionState
from rules.detectors.ewma import EwmaChart
from rules.engine.engine import Engine
from rules.engine.restore import OpenAlert, SnapshotError, seed_last_readings, seed_open_alerts
from rules.language.loader import load_rules
from tests.rules.conftest import small_registry
from tests.rules.engine.test_engine_rebuild import NEW_GAUGES, run, stream

M = 60_000
F, C = DetectionState.FIRING, DetectionState.CLEARED
RULES = """
- {id: hi, category: flood, match: {device_type: water_level}, when: value >= 2, for: 1m,
   clear_when: value < 1, severity: red if value >= 3 else orange}
- {id: win, category: flood, match: {device_type: water_level},
   when: mean(3m) > 2 or zscore(5m) > 1.5 or delta(2m) < -2}
- {id: silent, category: device, match: {device_type: water_level}, when: stale(2m)}
- {id: an, category: flood, match: {device_type: water_level}, when: anomaly(ewma) > 0.3}
- {id: cell, category: flood, when: "count_in(grid, rule=hi) >= 2"}
"""
DETECTORS = {"ewma": lambda: EwmaChart(warmup=5)}


def engine(registry: Registry, rules: str = RULES, detectors=None) -> Engine:
    return Engine(load_rules(rules), registry, detectors=detectors or DETECTORS)


def gauges(registry: Registry) -> list[int]:
    return [registry.slot(f"wl-{i}", "level_m") for i in range(6)]


def restarted(before: Engine, registry: Registry, rules: str = RULES, detectors=None) -> Engine:
    """A new engine for ``registry`` given ``before``'s snapshot, through a copy of its arrays."""
    after = engine(registry, rules, detectors)
    after.restore({k: v.copy() for k, v in before.snapshot().items()})
    return after


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_restored_engine_continues_like_one_that_never_stopped(seed):
    registry = small_registry()
    first, second = stream(gauges(registry), 0, 15, seed), stream(gauges(registry), 15 * 20_000,
                                                                  15, seed + 7)
    control = engine(registry)
    run(control, first)
    stopped = engine(registry)
    run(stopped, first)
    resumed = restarted(stopped, registry)
    got = run(resumed, second)
    assert got == run(control, second)
    assert {d.rule_id for d in got if d.state == F} >= {"hi", "win", "an"}


def test_restore_is_by_series_identity_not_slot_position():
    """The restarted registry numbers slots differently (reversed, with devices added first);
    the old gauges' detections are those of an engine that never restarted."""
    registry = small_registry()
    first = stream(gauges(registry), 0, 15, 4)
    stopped, control = engine(registry), engine(registry)
    run(stopped, first)
    run(control, first)
    renumbered = Registry.build(registry.catalogue,
                                [*NEW_GAUGES, *reversed(list(registry.devices.values()))])
    assert gauges(renumbered) != gauges(registry)
    resumed = restarted(stopped, renumbered)
    second_old = stream(gauges(registry), 15 * 20_000, 15, 5)
    second_new = [(ReadingBatch.from_columns(
        [renumbered.slot(registry.series(s).device_id, "level_m") for s in b.slot.tolist()],
        b.ts_ms, b.value), now) for b, now in second_old]
    old_ids = {f"wl-{i}" for i in range(6)}
    mine = [d for d in run(resumed, second_new) if d.device_id in old_ids]
    expected = [d for d in run(control, second_old) if d.device_id in old_ids]
    assert sorted(mine, key=repr) == sorted(expected, key=repr)  # ties ordered by slot


def test_retyped_device_starts_fresh_and_others_keep_state():
    registry = small_registry()
    stopped = engine(registry)
    run(stopped, stream(gauges(registry), 0, 6, 6))
    retyped = registry.updated([Device("wl-0", "air_quality", "north", 0.0, 0.0, grid="g-0-0")])
    resumed = engine(retyped)
    report = resumed.restore(stopped.snapshot())
    never = np.iinfo(np.int64).min
    assert report.series == 5 and report.unplaced_series == 1
    assert resumed.ctx.series.last_ts[retyped.slot("wl-0", "level_m")] == never
    assert resumed.ctx.series.last_ts[retyped.slot("wl-1", "level_m")] == \
        stopped.ctx.series.last_ts[registry.slot("wl-1", "level_m")] != never


def test_changed_rule_and_detector_start_fresh_and_are_reported():
    registry = small_registry()
    stopped = engine(registry)
    run(stopped, stream(gauges(registry), 0, 15, 8))
    changed = RULES.replace("value >= 2, for: 1m", "value >= 2.5, for: 1m")
    resumed = Engine(load_rules(changed), registry,
                     detectors={"ewma": lambda: EwmaChart(warmup=6)})
    report = resumed.restore(stopped.snapshot())
    assert not report.exact
    assert report.rules_fresh == ["hi"]  # as in a rebuild, "cell" (counting hi) keeps its own
    assert report.detectors_fresh == ["ewma"] and report.detectors == []
    assert not resumed.series_rules[0].state.state.any()
    assert int(resumed.detectors["ewma"].count.max()) == 0  # type: ignore[attr-defined]
    same = engine(registry)
    report = same.restore(stopped.snapshot())
    assert report.exact and report.rules_fresh == [] and report.detectors == ["ewma"]
    assert report.series == 6


@pytest.mark.parametrize("damage", ["version", "short", "missing"])
def test_inconsistent_snapshot_is_refused_and_nothing_applied(damage):
    registry = small_registry()
    stopped = engine(registry)
    run(stopped, stream(gauges(registry), 0, 6, 9))
    snap = stopped.snapshot()
    if damage == "version":
        snap["meta.version"] = np.array([99])
    elif damage == "short":
        snap["series.last_ts"] = snap["series.last_ts"][:-1]
    else:
        del snap["rule.0.state"]
    fresh = engine(registry)
    with pytest.raises(SnapshotError):
        fresh.restore(snap)
    assert (fresh.ctx.series.last_ts == np.iinfo(np.int64).min).all()


def test_open_alert_seeded_firing_clears_when_its_clear_condition_is_met():
    registry = small_registry()
    fresh = engine(registry)
    alert = OpenAlert("hi", "wl-2", "wl-2", "level_m", firing=True, severity=3, since_ms=0)
    assert seed_open_alerts(fresh, [alert, OpenAlert("gone", "x", "x", "m", True, 1, 0)]) == 1
    slot = registry.slot("wl-2", "level_m")
    found = fresh.evaluate(ReadingBatch.from_columns([slot], [M], [0.5]), M)
    assert [(d.rule_id, d.subject, d.state) for d in found] == [("hi", "wl-2", C)]


def test_last_reading_seeded_from_the_store_makes_staleness_count_from_it():
    registry = small_registry()
    fresh = engine(registry)
    slots = np.array(gauges(registry)[:2])
    assert seed_last_readings(fresh, slots, np.array([10 * M, 11 * M]), np.array([1.0, 1.0])) == 2
    assert fresh.tick(11 * M + 30_000) == []
    found = fresh.tick(12 * M + 1)  # 2 min after wl-0's last reading, not after the restart
    assert [(d.rule_id, d.subject, d.state) for d in found] == [("silent", "wl-0", F)]
    # an older stored reading does not move the engine's knowledge back
    assert seed_last_readings(fresh, slots[:1], np.array([M]), np.array([5.0])) == 0


def test_combined_detector_warm_up_survives_a_restore():
    registry = small_registry()
    rules = "- {id: an, category: flood, match: {device_type: water_level}, " \
            "when: anomaly(combined) > 0.99}"
    rng = np.random.default_rng(3)
    slots = gauges(registry)
    feed = [(ReadingBatch.from_columns(slots, [k * 1000] * 6, 1 + 0.1 * rng.standard_normal(6)),
             k * 1000) for k in range(260)]
    stopped, control = Engine(load_rules(rules), registry), Engine(load_rules(rules), registry)
    run(stopped, feed)
    run(control, feed)
    resumed = Engine(load_rules(rules), registry)
    assert resumed.restore(stopped.snapshot()).detectors == ["combined"]
    warm = resumed.detectors["combined"]
    assert (warm.count[resumed.ctx.detector_rows["combined"][slots]] >= 200).all()  # type: ignore[attr-defined]
    spike = [(ReadingBatch.from_columns(slots, [300_000] * 6, [1, 1, 1, 1, 1, 9.0]), 300_000)]
    got = run(resumed, spike)
    assert got == run(control, spike) and [d.subject for d in got] == ["wl-5"]


RISE = "- {id: rise, category: flood, match: {device_type: water_level}, when: delta(10m) > 0.3}"


def _level(engine: Engine, registry: Registry, device_id: str, minutes: range,
           value: float) -> list:
    slot = registry.slot(device_id, "level_m")
    return [d for m in minutes
            for d in engine.evaluate(ReadingBatch.from_columns([slot], [m * M], [value]), m * M)]


@pytest.mark.parametrize("moved", [True, False])
def test_a_device_moved_while_stopped_starts_fresh_so_its_new_place_raises_nothing(moved):
    """A gauge re-imported at another place reads another river: its old window must not make
    the first readings there look like a rise (with the old place kept, they do)."""
    registry = small_registry()
    stopped = engine(registry, RISE, {})
    assert _level(stopped, registry, "wl-0", range(0, 10), 0.5) == []
    place = dict(district="south", grid="g-5-5") if moved else dict(district="north",
                                                                    grid="g-0-0")
    again = registry.updated([Device("wl-0", "water_level", lat=0.0, lon=0.0, **place)])
    resumed = restarted(stopped, again, RISE, {})
    raised = _level(resumed, again, "wl-0", range(11, 20), 2.8)
    assert [d.rule_id for d in raised if d.state == F] == ([] if moved else ["rise"])


@pytest.mark.parametrize("moved", [True, False])
def test_a_device_moved_while_running_starts_fresh_and_its_alerts_are_handed_over(moved):
    registry = small_registry()
    running = engine(registry, RISE, {})
    assert _level(running, registry, "wl-0", range(0, 10), 0.5) == []
    assert _level(running, registry, "wl-1", range(0, 10), 0.5) == []
    grid = "g-5-5" if moved else "g-0-0"
    again = registry.updated([Device("wl-0", "water_level", "north", 0.0, 0.0, grid=grid)])
    rebuilt = running.rebuild(registry=again, now_ms=10 * M)
    assert rebuilt.relocated == (("wl-0",) if moved else ())
    raised = _level(rebuilt, again, "wl-0", range(11, 20), 2.8)
    assert [d.rule_id for d in raised if d.state == F] == ([] if moved else ["rise"])
    # the gauge that stayed keeps its window: a real rise there still fires
    assert [d.rule_id for d in _level(rebuilt, again, "wl-1", range(11, 20), 2.8)
            if d.state == F] == ["rise"]


def test_a_moved_device_gets_a_new_detector_row_even_when_it_held_the_last_one():
    """Its learned detector state describes the old place: the row it had is never handed
    back to it (nor to anyone), however the rows were numbered."""
    registry = small_registry()
    running = engine(registry)
    run(running, stream(gauges(registry), 0, 6, 9))
    rows = running.ctx.detector_rows["ewma"]
    last = int(np.argmax(rows))  # the slot holding the highest row
    size = len(running.ctx.scores["ewma"])
    device = registry.devices[registry.series(last).device_id]
    moved = registry.updated([Device(device.id, device.type, "south", 0.0, 0.0, grid="g-9-9")])
    rebuilt = running.rebuild(registry=moved)
    new_rows = rebuilt.ctx.detector_rows["ewma"]
    assert new_rows[last] >= size  # a fresh row, past every row the detector had
    others = np.flatnonzero((rows >= 0) & (np.arange(len(rows)) != last))
    assert (new_rows[others] == rows[others]).all()  # the others keep theirs
