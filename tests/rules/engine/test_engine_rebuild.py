"""`Engine.rebuild`: a changed rule file or a grown registry keeps the state that stays valid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.registry import Device
from rules.detection import DetectionState
from rules.engine.engine import Engine
from rules.language.loader import load_rules
from tests.rules.conftest import small_registry
from tests.rules.engine.test_engine_properties import Jumpy

M = 60_000
P, F, C = DetectionState.PENDING, DetectionState.FIRING, DetectionState.CLEARED
TIMER = "- {id: t, category: flood, match: {device_ids: wl-0}, when: value > 2, for: 2m}"
OTHER = "- {id: o, category: flood, match: {device_ids: wl-0}, when: value > 5}"
CHANGED = "- {id: o, category: flood, match: {device_ids: wl-0}, when: value > 1}"
ADDED = "- {id: n, category: flood, match: {device_type: water_level}, when: mean(5m) > 2}"


def one(slot: int, ts_ms: int, value: float) -> ReadingBatch:
    return ReadingBatch.from_columns([slot], [ts_ms], [value])


def states(detections):
    return [(d.rule_id, d.subject, d.state, d.ts_ms) for d in detections]


def test_rule_change_keeps_unchanged_rules_and_resets_changed_ones():
    old = Engine(load_rules(TIMER + "\n" + OTHER), small_registry(), detectors={})
    assert states(old.evaluate(one(0, 0, 3.0), 0)) == [("t", "wl-0", P, 0)]
    new = old.rebuild(load_rules(TIMER + "\n" + CHANGED + "\n" + ADDED))
    assert new.reset_rules == ("o",)
    # the `for` timer started before the rebuild runs out in the new engine
    assert states(new.tick(2 * M)) == [("t", "wl-0", F, 2 * M)]
    # the changed rule starts fresh; the added rule's window already holds the old reading
    assert states(new.evaluate(one(0, 3 * M, 3.0), 3 * M)) == [
        ("o", "wl-0", F, 3 * M), ("n", "wl-0", F, 3 * M)]
    # the old engine is untouched: its own timer is still pending
    assert states(old.tick(2 * M)) == [("t", "wl-0", F, 2 * M)]
    assert new.stats.readings == 2 and old.stats.readings == 1


def test_firing_state_survives_so_no_duplicate_firing_is_reported():
    old = Engine(load_rules(OTHER), small_registry(), detectors={})
    assert states(old.evaluate(one(0, 0, 9.0), 0)) == [("o", "wl-0", F, 0)]
    new = old.rebuild(load_rules(OTHER + "\n" + TIMER))
    assert states(new.evaluate(one(0, M, 9.0), M)) == [("t", "wl-0", P, M)]
    assert states(new.evaluate(one(0, 2 * M, 1.0), 2 * M)) == [
        ("o", "wl-0", C, 2 * M), ("t", "wl-0", C, 2 * M)]


STATEFUL = """
- {id: hi, category: flood, match: {device_type: water_level}, when: value >= 2, for: 1m,
   clear_when: value < 1, severity: red if value >= 3 else orange}
- {id: win, category: flood, match: {device_type: water_level},
   when: mean(3m) > 2 or zscore(5m) > 1.5 or delta(2m) < -2}
- {id: silent, category: device, match: {device_type: water_level}, when: stale(2m)}
- {id: an, category: flood, match: {device_type: water_level}, when: anomaly(jumpy) > 0.4}
- {id: cell, category: flood, when: "count_in(grid, rule=hi) >= 2"}
"""
NEW_GAUGES = [Device(f"wl-new-{i}", "water_level", "north", 0.0, 0.0, grid=cell)
              for i, cell in enumerate(["g-0-0", "g-9-9"])]


def stream(slots: list[int], start_ms: int, n: int, seed: int) -> list[tuple[ReadingBatch, int]]:
    """Batches of readings about 20 s apart, each with the time it is judged at."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        live = [s for s in slots if rng.random() < 0.8]
        ts = [start_ms + k * 20_000 + int(rng.integers(0, 5_000)) for _ in live]
        values = rng.choice([0.5, 1.5, 2.5, 3.5], len(live))
        out.append((ReadingBatch.from_columns(live, ts, values), start_ms + k * 20_000 + 6_000))
    return out


def run(engine: Engine, batches: list[tuple[ReadingBatch, int]]) -> list:
    got = []
    for batch, now in batches:
        got += engine.evaluate(batch, now) + engine.tick(now + 30_000)
    return got


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grown_registry_keeps_detections_of_old_series(seed):
    registry = small_registry()
    gauges = [registry.slot(f"wl-{i}", "level_m") for i in range(6)]
    grown = registry.updated(NEW_GAUGES)
    added = [grown.slot(d.id, "level_m") for d in NEW_GAUGES]
    assert min(added) >= registry.n_series and grown.slot("wl-3", "level_m") == gauges[3]
    rules = load_rules(STATEFUL)
    before, after = stream(gauges, 0, 12, seed), stream(gauges + added, 12 * 20_000, 12, seed + 9)

    rebuilt = Engine(rules, registry, detectors={"jumpy": Jumpy})
    run(rebuilt, before)
    rebuilt = rebuilt.rebuild(registry=grown)
    assert rebuilt.reset_rules == ()
    # control: the grown registry from the start, its new gauges silent until the rebuild point
    control = Engine(rules, grown, detectors={"jumpy": Jumpy})
    run(control, before)
    got = run(rebuilt, after)
    assert got == run(control, after)

    # and per-series detections of the old gauges are those of an engine that never grew
    unchanged = Engine(rules, registry, detectors={"jumpy": Jumpy})
    run(unchanged, before)
    old_ids = {f"wl-{i}" for i in range(6)}
    old_only = [(b.take(np.isin(b.slot, gauges)), now) for b, now in after]
    mine = [d for d in got if d.device_id in old_ids]
    assert mine == [d for d in run(unchanged, old_only) if d.device_id in old_ids]
    assert {d.rule_id for d in mine if d.state == F} >= {"hi", "win", "an"}


def test_shrinking_registry_is_refused():
    engine = Engine(load_rules(TIMER), small_registry().updated(NEW_GAUGES), detectors={})
    with pytest.raises(ValueError, match="append-only"):
        engine.rebuild(registry=small_registry())


def test_a_device_added_after_a_re_type_leaves_every_series_its_own_state():
    """Slots stay append-only across registry updates, so the state carried by slot stays
    with its series: the re-typed gauge's alert still clears after another device is added."""
    high = load_rules("- {id: h, category: flood, match: {device_type: water_level}, "
                      "when: value > 2}")
    registry = small_registry().updated([Device("x-0", "gas", "north", 0.0, 0.0, "g-0-0")])
    engine = Engine(high, registry, detectors={})
    gauge = registry.updated([replace(registry.get("x-0"), type="water_level")])
    engine = engine.rebuild(registry=gauge, now_ms=0)
    level = gauge.slot("x-0", "level_m")
    assert states(engine.evaluate(one(level, M, 9.0), M)) == [("h", "x-0", F, M)]
    grown = gauge.updated([Device("x-1", "gas", "north", 0.0, 0.0, "g-0-0")])
    assert grown.slot("x-0", "level_m") == level
    assert grown.slot("x-0", "lel_pct") == registry.slot("x-0", "lel_pct")
    engine = engine.rebuild(registry=grown, now_ms=2 * M)
    assert states(engine.evaluate(one(level, 3 * M, 1.0), 3 * M)) == [("h", "x-0", C, 3 * M)]
