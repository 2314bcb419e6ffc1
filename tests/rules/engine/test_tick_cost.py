"""A tick does only what falls due, and judges exactly as judging every series at every tick did.

The work is counted (`Stats.tick_judged`: members and areas a tick judged or promoted), never
timed. "Every series at every tick" is the engine itself with `Engine.refile` before each tick
(the next tick then judges every series that reported, as ticks did before deadlines were kept),
and the per-reading reference.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.engine.engine import Engine
from rules.language.loader import load_rules
from rules.oracles.engine import Reference
from tests.rules.conftest import small_registry

S, M = 1_000, 60_000
T0 = 1_700_000_000_000
DAY = 1_699_920_000_000  # 2023-11-14 00:00 UTC
CITY_RULES = """
- {id: offline, category: device, match: {device_type: water_level}, when: stale(10m)}
- {id: high, category: flood, match: {device_type: water_level}, when: value >= 2, for: 1m}
- {id: cell, category: flood, when: "count_in(grid, rule=high) >= 2"}
"""
TIMED_RULES = """
- {id: gone, category: device, match: {device_type: water_level},
   when: stale(30s) or missing for 50s, severity: red if stale(60s) else blue}
- {id: oor, category: device, match: {device_type: water_level}, when: out_of_range(20s),
   for: 10s}
- {id: hr, category: flood, match: {device_type: water_level},
   when: stale(15s) and hour() >= 9, clear_when: not stale(15s)}
- {id: hi, category: flood, match: {device_type: water_level}, when: value >= 2, for: 15s,
   clear_when: value < 1}
- {id: cell, category: flood, when: "count_in(grid, rule=hi) >= 2", for: 20s}
- {id: near, category: flood, when: "count_in(neighbours, rule=hi) >= 3"}
"""


def gauges(n: int) -> Registry:
    """``n`` water-level gauges (one series each), 20 to a grid cell."""
    devices = [Device(f"wl-{i}", "water_level", "north", 0.0, 0.0, grid=f"g-{i // 20}-0")
               for i in range(n)]
    return Registry.build(load_catalogue(), devices)


def readings(slots: np.ndarray, ts_ms: int, value: float) -> ReadingBatch:
    return ReadingBatch.from_columns(slots, np.full(len(slots), ts_ms), np.full(len(slots), value))


def judged(engine: Engine, now_ms: int) -> int:
    before = engine.stats.tick_judged
    engine.tick(now_ms)
    return engine.stats.tick_judged - before


def test_an_idle_tick_judges_no_series_however_many_there_are() -> None:
    registry = gauges(5_000)
    engine = Engine(load_rules(CITY_RULES), registry, detectors={})
    engine.evaluate(readings(np.arange(5_000), T0, 1.0), T0)  # the first tick sweeps
    assert [judged(engine, T0 + k * S) for k in range(1, 30)] == [0] * 29


def test_a_tick_judges_the_members_that_fall_due_and_the_areas_whose_counts_moved() -> None:
    engine = Engine(load_rules(CITY_RULES), gauges(5_000), detectors={})
    engine.evaluate(readings(np.arange(5_000), T0, 1.0), T0)
    assert engine.stats.tick_judged == 5_000 + 250  # the first tick sweeps: members, cells
    engine.evaluate(readings(np.arange(100), T0 + 5 * M, 1.0), T0 + 5 * M)  # heard again later
    assert engine.stats.tick_judged == 5_250
    assert judged(engine, T0 + 10 * M - S) == 0
    before = engine.stats.tick_judged
    assert len(engine.tick(T0 + 10 * M)) == 4_900  # offline: the 4,900 silent ones
    # ... judged with the 100 whose deadline moved later: found early, no change, filed again
    assert engine.stats.tick_judged - before == 5_000
    assert judged(engine, T0 + 10 * M + S) == 0
    engine.evaluate(readings(np.arange(3), T0 + 11 * M, 2.5), T0 + 11 * M)
    assert judged(engine, T0 + 12 * M - S) == 0  # the `for` timers are not due yet
    before = engine.stats.tick_judged
    found = engine.tick(T0 + 12 * M)
    assert [(d.rule_id, d.subject) for d in found] == [
        ("high", "wl-0"), ("high", "wl-1"), ("high", "wl-2"), ("cell", "grid:g-0-0")]
    assert engine.stats.tick_judged - before == 3 + 1  # 3 promoted, their one cell judged
    assert judged(engine, T0 + 12 * M + S) == 0
    assert judged(engine, T0 + 15 * M) == 100  # the 100 heard at 5 min fall due


@st.composite
def timelines(draw):
    """Readings, out-of-range faults and ticks on the gauges; ticks mostly forward in time."""
    steps, now = [], DAY + 59 * M  # 08:59 local (UTC+8): hour() >= 9 soon flips
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["read", "read", "fault", "tick", "tick", "back"]))
        if kind == "back":
            now -= draw(st.integers(1, 40)) * S
            steps.append(("tick", [], now))
            continue
        now += draw(st.integers(0, 45)) * S
        if kind == "tick":
            steps.append(("tick", [], now))
            continue
        rows = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(-20, 5),
                                       st.sampled_from([0.0, 1.5, 2.0, 3.0])), max_size=8))
        steps.append((kind, [(slot, now + dt * S, v) for slot, dt, v in rows], now))
    return steps


def _batch(rows: list[tuple[int, int, float]]) -> ReadingBatch:
    if not rows:
        return ReadingBatch.empty()
    slots, ts, values = zip(*rows, strict=True)
    return ReadingBatch.from_columns(slots, ts, values)


def _play(impl: Engine | Reference, steps: list, sweep_every_tick: bool = False) -> list:
    got = []
    for kind, rows, now in steps:
        if sweep_every_tick:
            impl.refile()
        if kind == "tick":
            got += impl.tick(now)
        elif kind == "read":
            got += impl.evaluate(_batch(rows), now)
        else:
            got += impl.evaluate(ReadingBatch.empty(), now, _batch(rows))
    return got


@settings(max_examples=120, deadline=None)
@given(steps=timelines())
def test_deadlines_fire_exactly_as_judging_every_series_at_every_tick(steps) -> None:
    rules, registry = load_rules(TIMED_RULES), small_registry()
    kept = _play(Engine(rules, registry, detectors={}), steps)
    assert kept == _play(Engine(rules, registry, detectors={}), steps, sweep_every_tick=True)
    assert kept == _play(Reference(rules, registry, detectors={}), steps)
