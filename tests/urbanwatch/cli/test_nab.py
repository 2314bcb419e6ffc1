"""`urbanwatch nab`: the alert column is the shipped rule's, and scores only look back."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from urbanwatch.cli.app import app
from urbanwatch.cli.nab import (
    NabSeries,
    read_series,
    run_rule,
    shipped_rule,
    strictly_increasing,
)

N_ROWS = 500


def irregular_series(name: str, seed: int, n: int = N_ROWS) -> NabSeries:
    """Readings 1 to 10 minutes apart (some stamps repeated): a daily cycle, noise, a spike and
    a level shift."""
    rng = np.random.default_rng(seed)
    gaps_min = rng.integers(1, 11, n)
    gaps_min[rng.random(n) < 0.02] = 0  # repeated stamps, as in NAB's AWS files
    minutes = np.cumsum(gaps_min)
    ts = (np.datetime64("2014-03-09T00:00") + minutes.astype("timedelta64[m]")).astype(
        "datetime64[ms]")
    values = 10 + np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 0.1, n)
    values[int(0.6 * n)] += 15.0
    values[int(0.8 * n):] += 5.0
    stamps = [str(t).replace("T", " ")[:19] for t in ts]
    return NabSeries(name, stamps, ts.astype(np.int64), values)


def prefix(s: NabSeries, k: int) -> NabSeries:
    return NabSeries(s.name, s.stamps[:k], s.ts_ms[:k], s.values[:k])


def starts_of_firing(scores: np.ndarray, fire_above: float, clear_below: float) -> np.ndarray:
    """Rows where a rule ``score > fire_above`` with ``clear_when: score < clear_below`` starts
    firing: the state machine replayed by hand."""
    out, firing = np.zeros(len(scores), dtype=np.int8), False
    for i, s in enumerate(scores):
        if not firing and s > fire_above:
            out[i], firing = 1, True
        elif firing and s < clear_below:
            firing = False
    return out


def test_strictly_increasing_moves_duplicates_and_backward_stamps_just_after() -> None:
    got = strictly_increasing(np.array([10, 20, 20, 20, 15, 19, 30, 30], dtype=np.int64))
    assert got.tolist() == [10, 20, 21, 22, 23, 24, 30, 31]


def test_the_alert_column_is_where_the_shipped_rule_starts_firing() -> None:
    rule = shipped_rule()
    # the thresholds replayed below are the pack's own
    assert (rule.when, rule.clear_when) == ("anomaly(combined) > 0.99", "anomaly(combined) < 0.9")
    series = [irregular_series(f"c/f{i}.csv", seed) for i, seed in enumerate([1, 2, 3])]
    results = run_rule(series)
    for s, r in zip(series, results, strict=True):
        assert len(r.scores) == len(r.alerts) == len(s.values)
        np.testing.assert_array_equal(r.alerts, starts_of_firing(r.scores, 0.99, 0.9))
        spike = int(0.6 * N_ROWS)
        assert r.alerts[spike] == 1, "the spike is alerted on its own row"
    assert sum(int(r.alerts.sum()) for r in results) < 0.02 * 3 * N_ROWS  # alerts, not noise


def test_the_command_writes_scores_and_alerts_as_nab_results(tmp_path: Path) -> None:
    s = irregular_series("cat/file.csv", 7)
    data = tmp_path / "data" / "cat" / "file.csv"
    data.parent.mkdir(parents=True)
    data.write_text("timestamp,value\n" + "".join(
        f"{t},{v!r}\n" for t, v in zip(s.stamps, s.values.tolist(), strict=True)))
    got = CliRunner().invoke(app, ["nab", "--data", str(tmp_path / "data"),
                                   "--out", str(tmp_path / "out")])
    assert got.exit_code == 0, got.output
    with (tmp_path / "out" / "cat" / "file.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert"]
    want = run_rule(read_series(tmp_path / "data"))[0]
    assert [r["timestamp"] for r in rows] == s.stamps
    assert [float(r["anomaly_score"]) for r in rows] == want.scores.tolist()
    assert [int(r["alert"]) for r in rows] == want.alerts.tolist()


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), cut=st.integers(1, N_ROWS))
def test_scores_over_any_prefix_are_the_first_scores_over_the_whole_file(
    seed: int, cut: int
) -> None:
    """Causality: rows after ``cut`` change nothing before it (another file fed alongside)."""
    mine, other = irregular_series("a/mine.csv", seed), irregular_series("b/other.csv", seed + 1)
    whole = run_rule([mine, other])[0]
    part = run_rule([prefix(mine, cut), other])[0]
    np.testing.assert_array_equal(part.scores, whole.scores[:cut])
    np.testing.assert_array_equal(part.alerts, whole.alerts[:cut])
