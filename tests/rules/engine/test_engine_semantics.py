"""Operator and lifecycle semantics of the engine on small hand-made streams."""

from __future__ import annotations

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detection import DetectionState, Severity
from rules.engine.backtest import backtest
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack, load_rules
from tests.rules.conftest import small_registry

M = 60_000
P, F, C = DetectionState.PENDING, DetectionState.FIRING, DetectionState.CLEARED


def feed(engine, readings, now_ms=None):
    slots, ts, values = zip(*readings, strict=True)
    now = max(ts) if now_ms is None else now_ms
    return [(d.subject, d.state, d.severity, d.ts_ms)
            for d in engine.evaluate(ReadingBatch.from_columns(slots, ts, values), now)]


def engine_for(text: str) -> Engine:
    return Engine(load_rules(text), small_registry(), detectors={})


def test_for_hysteresis_and_escalation():
    e = engine_for("- {id: t, category: flood, match: {device_ids: wl-0}, when: value > 2,"
                   " for: 2m, clear_when: value < 1, severity: red if value >= 3 else orange}")
    assert feed(e, [(0, 0, 2.5)]) == [("wl-0", P, Severity.ORANGE, 0)]
    assert feed(e, [(0, M, 2.6)]) == []
    assert feed(e, [(0, 2 * M, 2.7)]) == [("wl-0", F, Severity.ORANGE, 2 * M)]
    assert feed(e, [(0, 3 * M, 3.5)]) == [("wl-0", F, Severity.RED, 3 * M)]
    # below `when` but above clear_when: still firing, at the lower severity
    assert feed(e, [(0, 4 * M, 1.5)]) == [("wl-0", F, Severity.ORANGE, 4 * M)]
    assert feed(e, [(0, 5 * M, 0.5)]) == [("wl-0", C, Severity.ORANGE, 5 * M)]


PENDING_RULE = "- {id: t, category: flood, match: {device_ids: wl-0}, when: value > 2, for: 2m}"


def test_pending_fires_at_tick_and_drops_when_condition_fails():
    e = engine_for(PENDING_RULE)
    assert feed(e, [(0, 0, 3.0)]) == [("wl-0", P, Severity.YELLOW, 0)]
    assert [(d.state, d.ts_ms) for d in e.tick(2 * M)] == [(F, 2 * M)]
    e2 = engine_for(PENDING_RULE)
    feed(e2, [(0, 0, 3.0)])
    assert feed(e2, [(0, M, 1.0)]) == [("wl-0", C, Severity.YELLOW, M)]


def test_late_and_duplicate_readings_are_dropped_and_counted():
    e = engine_for("- {id: t, category: flood, match: {device_ids: wl-0}, when: value > 2}")
    assert feed(e, [(0, 2 * M, 1.0), (0, M, 5.0)]) == [("wl-0", F, Severity.YELLOW, M),
                                                      ("wl-0", C, Severity.YELLOW, 2 * M)]
    assert feed(e, [(0, M, 9.0), (0, 2 * M, 9.0), (0, 3 * M, 1.0), (0, 3 * M, 9.0)]) == []
    assert (e.stats.late, e.stats.duplicate) == (1, 2)


def test_stale_is_raised_by_tick_and_cleared_by_a_reading():
    e = engine_for("- {id: s, category: device, match: {device_ids: wl-0}, when: missing for 10m}")
    feed(e, [(0, 0, 1.0)])
    assert e.tick(9 * M) == []
    assert [d.state for d in e.tick(10 * M)] == [F]
    assert feed(e, [(0, 11 * M, 1.0)]) == [("wl-0", C, Severity.YELLOW, 11 * M)]


def test_windows_rate_and_stuck():
    e = engine_for("""
- {id: r, category: flood, match: {device_ids: wl-0}, when: rate(5m) > 0.001}
- {id: k, category: device, match: {device_ids: wl-0}, when: stuck(3m)}""")
    out = []
    for k, v in enumerate([1.0, 1.0, 1.0, 1.0, 1.2]):
        out += [(d.rule_id, d.state, d.ts_ms) for d in
                e.evaluate(ReadingBatch.from_columns([0], [k * M], [v]), k * M)]
    # 0.2 m in 4 min = 0.00083/s < 0.001: rate stays quiet; flat 3 min: stuck fires, then clears
    assert out == [("k", F, 3 * M), ("k", C, 4 * M)]


def test_count_in_grid_cluster():
    e = engine_for("""
- {id: hi, category: flood, match: {device_type: water_level}, when: value >= 2}
- {id: cell, category: flood, when: 'count_in(grid, rule=hi) >= 2', severity: red}""")
    got = feed(e, [(0, 0, 3.0), (1, 0, 3.0), (2, 0, 3.0)])
    assert ("grid:g-0-0", F, Severity.RED, 0) in got
    assert not any(s == "grid:g-0-1" for s, *_ in got)


def test_count_in_in_severity_is_counted_like_one_in_when():
    e = engine_for("""
- {id: hi, category: flood, match: {device_type: water_level}, when: value >= 2}
- {id: top, category: flood, match: {device_type: water_level}, when: value >= 5}
- {id: cell, category: flood, when: 'count_in(grid, rule=hi) >= 1',
   severity: 'red if count_in(grid, rule=top) >= 1 else yellow'}""")
    got = feed(e, [(0, 0, 3.0), (2, 0, 6.0)])
    assert ("grid:g-0-0", F, Severity.YELLOW, 0) in got
    assert ("grid:g-0-1", F, Severity.RED, 0) in got
    assert ("grid:g-0-0", F, Severity.RED, M) in feed(e, [(1, M, 7.0)])  # top fires there now


def test_default_pack_compiles_against_every_device_type():
    catalogue = load_catalogue()
    devices = [Device(f"{t}-{i}", t, f"d{i}", 0.0, 0.0, grid=f"g-0-{i}")
               for t in catalogue for i in range(2)]
    rules = load_default_pack()
    engine = Engine(rules, Registry.build(catalogue, devices))
    assert len(engine.series_rules) + len(engine.area_rules) == len(rules) >= 20
    assert all(len(sr.slots) > 0 for sr in engine.series_rules)
    matched_types = {engine.table.type[s] for sr in engine.series_rules for s in sr.slots}
    assert matched_types == set(catalogue)


def test_default_pack_gas_levels():
    catalogue = load_catalogue()
    registry = Registry.build(catalogue, [Device("gas-1", "gas", "d", 0.0, 0.0, grid="g-0-0")])
    gas = [r for r in load_default_pack() if r.id == "gas-lel"]
    e = Engine(gas, registry)
    assert [d.severity for d in e.evaluate(ReadingBatch.from_columns([0], [0], [25.0]), 0)] == [
        Severity.ORANGE]
    assert [d.severity for d in e.evaluate(ReadingBatch.from_columns([0], [M], [55.0]), M)] == [
        Severity.RED]


def test_backtest_replays_history_with_ticks():
    rules = load_rules("- {id: s, category: device, match: {device_ids: wl-0}, when: stale(5m)}")
    history = [ReadingBatch.from_columns([0, 0], [3 * M, 0], [1.0, 1.0]),
               ReadingBatch.from_columns([0], [20 * M], [1.0])]
    got = backtest(rules, small_registry(), history, M, detectors={})
    assert [(d.state, d.ts_ms) for d in got] == [(F, 8 * M), (C, 20 * M)]
