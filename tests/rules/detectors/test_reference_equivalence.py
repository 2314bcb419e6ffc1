"""Vectorized detectors give exactly the scores of the per-reading reference implementations.

Readings of several series are interleaved at random, fed to the vectorized detector in random
batches (each split into rounds in which a slot appears at most once, as the engine does) and to
the reference one reading at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.detectors import (
    AnomalyLikelihood,
    Cusum,
    EwmaChart,
    RobustZ,
    SeasonalBaseline,
    StepChart,
)
from rules.detectors.base import score_and_update
from rules.detectors.likelihood import DEFAULT_CONTEXT
from rules.oracles.detectors import (
    RefCusum,
    RefEwma,
    RefLikelihood,
    RefRobustZ,
    RefSeasonal,
    RefStep,
)

N_SLOTS = 3
HOUR_MS = 3_600_000
T0_MS = 1_710_460_800_000  # 2024-03-15 00:00 UTC

# (vectorized factory, reference factory): small warm-ups so short streams exercise scoring.
PAIRS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "ewma": (lambda: EwmaChart(tau_s=900.0, warmup=3), lambda: RefEwma(tau_s=900.0, warmup=3)),
    "robust_z": (lambda: RobustZ(window=4), lambda: RefRobustZ(window=4)),
    "robust_z_odd": (lambda: RobustZ(window=5), lambda: RefRobustZ(window=5)),
    "seasonal": (
        lambda: SeasonalBaseline(alpha=0.3, warmup=1, timezone="Europe/Berlin"),
        lambda: RefSeasonal(alpha=0.3, warmup=1, timezone="Europe/Berlin"),
    ),
    "step": (lambda: StepChart(tau_s=900.0, warmup=2), lambda: RefStep(tau_s=900.0, warmup=2)),
    "cusum": (lambda: Cusum(tau_s=3600.0, k=0.2, h=2.0, warmup=3),
              lambda: RefCusum(tau_s=3600.0, k=0.2, h=2.0, warmup=3)),
    "combined": (
        lambda: AnomalyLikelihood(
            [EwmaChart(tau_s=600.0, warmup=2), RobustZ(window=3), Cusum(warmup=2, h=1.0),
             StepChart(tau_s=600.0, warmup=1)],
            short_tau_s=300.0, long_tau_s=1800.0, warmup=3, confirm_at=0.3, max_skip=2,
            refractory_s=7200.0,
        ),
        lambda: RefLikelihood(
            [RefEwma(tau_s=600.0, warmup=2), RefRobustZ(window=3), RefCusum(warmup=2, h=1.0),
             RefStep(tau_s=600.0, warmup=1)],
            short_tau_s=300.0, long_tau_s=1800.0, warmup=3, confirm_at=0.3, max_skip=2,
            refractory_s=7200.0,
        ),
    ),
    "combined_in_context": (
        lambda: AnomalyLikelihood(
            [EwmaChart(tau_s=600.0, warmup=2), SeasonalBaseline(alpha=0.3, warmup=1),
             StepChart(tau_s=600.0, warmup=1), Cusum(warmup=2, h=1.0)],
            short_tau_s=300.0, long_tau_s=1800.0, warmup=3, confirm_at=0.3, max_skip=2,
            refractory_s=7200.0, context=DEFAULT_CONTEXT, explained_below=0.6,
        ),
        lambda: RefLikelihood(
            [RefEwma(tau_s=600.0, warmup=2), RefSeasonal(alpha=0.3, warmup=1),
             RefStep(tau_s=600.0, warmup=1), RefCusum(warmup=2, h=1.0)],
            short_tau_s=300.0, long_tau_s=1800.0, warmup=3, confirm_at=0.3, max_skip=2,
            refractory_s=7200.0, context=DEFAULT_CONTEXT, explained_below=0.6,
        ),
    ),
}

values = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from([0.0, 1.0, 5.0]),  # repeats: flat windows, zero MAD / variance
)
reading = st.tuples(
    st.integers(0, N_SLOTS - 1),
    # spread over a month around Berlin's switch to summer time (2024-03-31): every season
    # cell, in any order
    st.integers(T0_MS, T0_MS + 30 * 24 * HOUR_MS),
    values,
)
stream = st.lists(reading, min_size=1, max_size=60)


def rounds(slots: np.ndarray) -> list[np.ndarray]:
    """Split a batch into rounds of indices in which each slot occurs at most once, in order."""
    seen: dict[int, int] = {}
    rank = np.empty(len(slots), dtype=np.int64)
    for i, s in enumerate(slots.tolist()):
        rank[i] = seen.get(s, 0)
        seen[s] = rank[i] + 1
    return [np.flatnonzero(rank == r) for r in range(int(rank.max(initial=-1)) + 1)]


Readings = list[tuple[int, int, float]]


def run_vectorized(det: Any, readings: Readings, cuts: list[int]) -> list[float]:
    det.grow(N_SLOTS)
    slots = np.array([r[0] for r in readings], dtype=np.int64)
    ts = np.array([r[1] for r in readings], dtype=np.int64)
    vals = np.array([r[2] for r in readings], dtype=np.float64)
    out = np.full(len(readings), np.nan)
    bounds = [0, *sorted(c % (len(readings) + 1) for c in cuts), len(readings)]
    for lo, hi in itertools.pairwise(bounds):
        for idx in rounds(slots[lo:hi]):
            i = idx + lo
            out[i] = score_and_update(det, slots[i], ts[i], vals[i])
    return out.tolist()


def run_reference(ref: Any, readings: list[tuple[int, int, float]]) -> list[float]:
    out = []
    for slot, ts, x in readings:
        out.append(ref.score(slot, ts, x))
        ref.update(slot, ts, x)
    return out


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(PAIRS)), readings=stream,
       cuts=st.lists(st.integers(0, 60), max_size=3))
def test_vectorized_matches_reference(
    name: str, readings: list[tuple[int, int, float]], cuts: list[int]
) -> None:
    make_vec, make_ref = PAIRS[name]
    got = run_vectorized(make_vec(), readings, cuts)
    want = run_reference(make_ref(), readings)
    assert got == want


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(PAIRS)), readings=stream)
def test_interleaving_does_not_leak_between_slots(
    name: str, readings: list[tuple[int, int, float]]
) -> None:
    """Each slot's scores equal those of a detector that saw that slot's readings alone."""
    make_vec, _ = PAIRS[name]
    together = run_vectorized(make_vec(), readings, [])
    for slot in range(N_SLOTS):
        mine = [i for i, r in enumerate(readings) if r[0] == slot]
        alone = run_vectorized(make_vec(), [readings[i] for i in mine], [])
        assert [together[i] for i in mine] == alone
