"""A base detector judged in context: a reading its context finds usual is not its news."""

from __future__ import annotations

import numpy as np
import pytest

from rules.detectors import AnomalyLikelihood, EwmaChart, StepChart
from rules.detectors.likelihood import DEFAULT_CONTEXT

MINUTE_MS, HOUR_MS = 60_000, 3_600_000
T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def level_and_step(context: tuple[tuple[int, int], ...]) -> AnomalyLikelihood:
    d = AnomalyLikelihood([EwmaChart(tau_s=6000.0), StepChart(tau_s=6000.0)], warmup=50,
                          range_tolerance=None, context=context)
    d.grow(1)
    return d


def test_a_jump_to_a_usual_level_counts_only_when_the_level_is_unusual() -> None:
    """A smooth 6-hour wave: its steps are small, its level wide. A jump that lands within the
    usual level is the step chart's news only when the step chart is judged alone."""
    alone, judged = level_and_step(()), level_and_step(((1, 0),))
    s = np.zeros(1, dtype=np.int64)
    ts = T0_MS + np.arange(0, 3 * 1440, 5) * MINUTE_MS  # three days, every 5 minutes

    def wave(t: np.ndarray) -> np.ndarray:
        return 10.0 + 5.0 * np.sin(2 * np.pi * (t - T0_MS) / (6 * HOUR_MS))

    for t, v in zip(ts.tolist(), wave(ts).tolist(), strict=True):
        for d in (alone, judged):
            d.score_and_update(s, np.array([t]), np.array([v]))
    t = np.array([ts[-1] + 5 * MINUTE_MS])

    def scores(jump: float) -> tuple[float, float, float]:
        """(level chart's raw score, combined score of the step chart alone, in context)."""
        x = wave(t) + jump
        level, step = (float(b.score(s, t, x)[0]) for b in judged.detectors)
        assert step > 0.5  # the step chart finds every one of these jumps unusual
        return level, float(alone.score(s, t, x)[0]), float(judged.score(s, t, x)[0])

    level, usual_alone, usual_judged = scores(2.0)
    assert 0.0 < level < judged.explained_below
    assert usual_judged < usual_alone / 4
    level, far_alone, far_judged = scores(40.0)
    assert level >= judged.explained_below
    assert far_judged == far_alone


def test_context_pairs_must_name_two_base_detectors() -> None:
    for context in [((0, 0),), ((0, 2),), ((-1, 0),)]:
        with pytest.raises(ValueError, match="context"):
            AnomalyLikelihood([EwmaChart(), StepChart()], context=context)


def test_the_default_base_is_judged_in_its_default_context_and_given_bases_alone() -> None:
    assert AnomalyLikelihood().context == DEFAULT_CONTEXT
    assert AnomalyLikelihood([EwmaChart(), StepChart()]).context == ()
