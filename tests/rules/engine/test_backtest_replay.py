"""Replay: a backtest fed in time-ordered chunks gives the detections of the one-shot backtest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.batch import ReadingBatch
from rules.engine.backtest import Replay, backtest
from rules.language.loader import load_rules
from tests.rules.conftest import small_registry

M = 60_000
RULES = load_rules("""
- {id: high, category: flood, match: {metric: level_m}, when: value > 5, for: 2m,
   clear_when: value < 3, severity: "red if value > 8 else yellow"}
- {id: quiet, category: device, match: {metric: level_m}, when: stale(4m), severity: blue}
- {id: rise, category: flood, match: {metric: level_m}, when: delta(3m) > 2, severity: orange}
- {id: cell, category: flood, when: "count_in(grid, rule=high) >= 2", severity: red}
""")

readings = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 60 * M), st.integers(0, 10).map(float)),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(rows=readings, cuts=st.lists(st.integers(0, 60 * M), max_size=5),
       tick=st.sampled_from([M, 90_000, 5 * M]), end=st.integers(0, 90 * M))
def test_chunked_replay_matches_the_one_shot_backtest(rows, cuts, tick, end) -> None:
    history = ReadingBatch.from_columns(*(np.array(c) for c in zip(*rows, strict=True))) \
        if rows else ReadingBatch.empty()
    expected = backtest(RULES, small_registry(), history, tick, end_ms=end, detectors={})
    replay = Replay(RULES, small_registry(), tick, detectors={})
    bounds = [0, *sorted(cuts), 61 * M]
    for lo, hi in itertools.pairwise(bounds):  # time chunks [lo, hi)
        replay.feed(history.take((history.ts_ms >= lo) & (history.ts_ms < hi)))
    assert replay.finish(end) == expected


def test_a_chunk_older_than_an_evaluated_window_is_refused() -> None:
    replay = Replay(RULES, small_registry(), M, detectors={})
    replay.feed(ReadingBatch.from_columns([0], [10 * M], [1.0]))
    with pytest.raises(ValueError, match="time order"):
        replay.feed(ReadingBatch.from_columns([0], [2 * M], [1.0]))
