"""The vectorized engine gives exactly the detections of the per-reading reference.

For every operator: random readings (with repeats, equal values, late and duplicate timestamps),
random cuts into batches, random interleavings within a batch, and ticks between batches.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.batch import ReadingBatch
from rules.detectors import DETECTORS
from rules.engine.engine import Engine
from rules.language.loader import load_rules
from rules.oracles.engine import Reference
from tests.rules.conftest import small_registry

GAUGE = "match: {device_type: water_level}"
OPERATORS = {
    "threshold-for-clear": f"""
- {{id: t, category: flood, {GAUGE}, when: value > 2, for: 30s, clear_when: value < 1,
   severity: red if value >= 3 else orange}}""",
    "windows": f"""
- {{id: mean, category: flood, {GAUGE}, when: mean(1m) > 2 and min(1m) >= 0.5}}
- {{id: max, category: flood, {GAUGE}, when: max(40s) - min(40s) > 1.5}}
- {{id: delta, category: flood, {GAUGE}, when: delta(1m) > 1 or delta(1m) < -2}}
- {{id: rate, category: flood, {GAUGE}, when: rate(1m) > 0.05, for: 20s}}
- {{id: z, category: flood, {GAUGE}, when: zscore(2m) > 1.2 or zscore(2m) < -1.5}}""",
    "stale-stuck": f"""
- {{id: stale, category: device, {GAUGE}, when: stale(30s) or missing for 50s,
   severity: red if stale(60s) else blue}}
- {{id: stuck, category: device, {GAUGE}, when: stuck(30s)}}""",
    "arith-hour-attr": f"""
- {{id: ar, category: flood, {GAUGE}, when: (value - 1) / (value - 2) > 1 or -value * 2 < -7}}
- {{id: hr, category: flood, {GAUGE}, when: value > (1 if hour() >= 8 else 3)}}
- {{id: at, category: flood, {GAUGE}, when: value >= attr(warning_level), for: 10s}}
- {{id: ad, category: flood, {GAUGE}, when: 'value >= attr(warning_level, 2.5)'}}""",
    "count_in": f"""
- {{id: hi, category: flood, {GAUGE}, when: value >= 2, clear_when: value < 1}}
- {{id: cell, category: flood, when: "count_in(grid, rule=hi) >= 2", for: 20s}}
- {{id: dist, category: flood, when: "count_in(district, rule=hi) >= 3",
   severity: "red if count_in(district, rule=hi) >= 4 else yellow"}}
- {{id: near, category: flood, when: "count_in(neighbours, rule=hi) >= 3"}}""",
}
ATTRS = {"wl-0": {"warning_level": 2.0}, "wl-2": {"warning_level": 1.0},
         "wl-4": {"warning_level": 3.0}}
T0 = 1_700_000_000_000

readings = st.lists(
    st.tuples(
        st.integers(0, 6),  # slot; slots 6.. belong to the air-quality station or are unknown
        st.integers(0, 40).map(lambda k: T0 + k * 5_000),
        st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, -1.0]),
    ),
    max_size=80,
)


@st.composite
def schedules(draw):
    """Readings cut into batches (interleaved at random), each with the `now` it is judged at."""
    rows = draw(readings)
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    out, lo, now = [], 0, T0
    for hi in [*cuts, len(rows)]:
        part = draw(st.permutations(rows[lo:hi]))
        latest = max([now] + [ts for _, ts, _ in part])
        now = latest + draw(st.integers(0, 90_000))
        out.append((part, now))
        lo = hi
    return out


def _run(impl, schedule, ticks):
    got = []
    for part, now in schedule:
        slots, ts, values = zip(*part, strict=True) if part else ((), (), ())
        got += impl.evaluate(ReadingBatch.from_columns(slots, ts, values), now)
        for extra in ticks:
            got += impl.tick(now + extra)
    return got


@pytest.mark.parametrize("name", list(OPERATORS))
@settings(max_examples=60, deadline=None)
@given(schedule=schedules(), ticks=st.lists(st.integers(1, 60_000), max_size=2))
def test_engine_equals_reference(name, schedule, ticks):
    rules = load_rules(OPERATORS[name])
    registry = small_registry()
    engine = Engine(rules, registry, attributes=ATTRS, detectors={})
    reference = Reference(rules, registry, attributes=ATTRS, detectors={})
    assert _run(engine, schedule, ticks) == _run(reference, schedule, ticks)
    assert (engine.stats.late, engine.stats.duplicate) == (reference.late, reference.duplicate)


class Jumpy:
    """A tiny detector with order-dependent state: score = |x - previous learned x| / 4, capped."""

    def __init__(self) -> None:
        self.n_slots = 0
        self.last = np.zeros(0)

    def grow(self, n_slots: int) -> None:
        self.last = np.concatenate([self.last, np.zeros(n_slots - self.n_slots)])
        self.n_slots = n_slots

    def score(self, slots, ts_ms, values):
        return np.minimum(np.abs(values - self.last[slots]) / 4.0, 1.0)

    def update(self, slots, ts_ms, values, skip=None):
        learn = np.ones(len(slots), dtype=bool) if skip is None else ~skip
        self.last[slots[learn]] = values[learn]


ANOMALY_RULES = f"""
- {{id: jump, category: flood, {GAUGE}, when: anomaly(jumpy) > 0.4,
   clear_when: anomaly(jumpy) < 0.2}}
"""
REAL_RULES = "\n".join(
    f"- {{id: a-{name}, category: flood, {GAUGE}, when: anomaly({name}) > 0.5}}"
    for name in DETECTORS
)


@settings(max_examples=60, deadline=None)
@given(schedule=schedules())
def test_anomaly_hookup_equals_reference(schedule):
    rules = load_rules(ANOMALY_RULES)
    registry = small_registry()
    engine = Engine(rules, registry, detectors={"jumpy": Jumpy})
    reference = Reference(rules, registry, detectors={"jumpy": Jumpy})
    assert _run(engine, schedule, []) == _run(reference, schedule, [])


@settings(max_examples=30, deadline=None)
@given(schedule=schedules())
def test_every_registered_detector_equals_reference(schedule):
    rules = load_rules(REAL_RULES)
    registry = small_registry()
    assert _run(Engine(rules, registry), schedule, []) == _run(
        Reference(rules, registry), schedule, []
    )
