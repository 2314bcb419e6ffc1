"""The contract every registered detector keeps (River-style estimator checks)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rules.detectors import DETECTORS, Detector
from rules.detectors.base import score_and_update

NAMES = sorted(DETECTORS)
HOUR_MS = 3_600_000


def stream(n: int = 4000, n_slots: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A periodic noisy stream per slot, interleaved, with a spike near the end of slot 0."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    slots = (i % n_slots).astype(np.int64)
    ts = (i // n_slots).astype(np.int64) * HOUR_MS
    vals = 10.0 * np.sin(i / 30.0) + rng.normal(0.0, 1.0, n) + slots
    vals[n - n_slots] += 500.0
    return slots, ts, vals


def feed(det: Detector, slots: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Feed a batch in rounds of at most one reading per slot (as the engine does)."""
    out = np.empty(len(slots))
    rank = np.zeros(len(slots), dtype=np.int64)
    seen: dict[int, int] = {}
    for k, s in enumerate(slots.tolist()):
        rank[k], seen[s] = seen.get(s, 0), seen.get(s, 0) + 1
    for r in range(int(rank.max(initial=-1)) + 1):
        idx = np.flatnonzero(rank == r)
        out[idx] = score_and_update(det, slots[idx], ts[idx], vals[idx])
    return out


def fresh(name: str, n_slots: int = 4) -> Detector:
    det = DETECTORS[name]()
    det.grow(n_slots)
    return det


@pytest.mark.parametrize("name", NAMES)
def test_defaults_build_and_follow_the_protocol(name: str) -> None:
    det = DETECTORS[name]()
    assert isinstance(det, Detector)
    assert det.n_slots == 0
    assert repr(det).startswith(type(det).__name__ + "(")


@pytest.mark.parametrize("name", NAMES)
def test_scores_are_in_unit_interval_and_the_spike_stands_out(name: str) -> None:
    slots, ts, vals = stream()
    scores = feed(fresh(name), slots, ts, vals)
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    spike = len(vals) - 4
    assert scores[spike] > np.quantile(scores[:spike][slots[:spike] == 0], 0.99)


@pytest.mark.parametrize("name", NAMES)
def test_state_pickles_round_trip(name: str) -> None:
    slots, ts, vals = stream()
    half = len(slots) // 2
    det = fresh(name)
    feed(det, slots[:half], ts[:half], vals[:half])
    clone = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(
        feed(det, slots[half:], ts[half:], vals[half:]),
        feed(clone, slots[half:], ts[half:], vals[half:]),
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cut", [1, 1371, 3999], ids=["first", "middle", "last"])
def test_batch_split_in_two_equals_whole(name: str, cut: int) -> None:
    slots, ts, vals = stream()
    whole = feed(fresh(name), slots, ts, vals)
    det = fresh(name)
    parts = np.concatenate([
        feed(det, slots[:cut], ts[:cut], vals[:cut]),
        feed(det, slots[cut:], ts[cut:], vals[cut:]),
    ])
    np.testing.assert_array_equal(parts, whole)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_mutated_and_score_changes_nothing(name: str) -> None:
    slots, ts, vals = stream()
    det = fresh(name)
    feed(det, slots[:2000], ts[:2000], vals[:2000])
    batch = (slots[2000:2004].copy(), ts[2000:2004].copy(), vals[2000:2004].copy())
    before = pickle.dumps(det)
    first = det.score(*batch)
    assert pickle.dumps(det) == before
    np.testing.assert_array_equal(det.score(*batch), first)
    det.update(*batch, np.array([True, False, False, False]))
    for arr, orig in zip(batch, (slots[2000:2004], ts[2000:2004], vals[2000:2004]), strict=True):
        np.testing.assert_array_equal(arr, orig)


@pytest.mark.parametrize("name", NAMES)
def test_grow_keeps_state_and_new_slots_start_empty(name: str) -> None:
    slots, ts, vals = stream()
    det = fresh(name)
    feed(det, slots, ts, vals)
    det.grow(6)
    det.grow(5)  # never shrinks
    assert det.n_slots == 6
    grown = det.score(np.array([0, 5]), ts[-2:], vals[-2:])
    assert grown[1] == 0.0  # a new slot is warming up


@pytest.mark.parametrize("name", NAMES)
def test_unknown_slot_and_ragged_input_are_refused(name: str) -> None:
    det = fresh(name, n_slots=2)
    one = np.array([0], dtype=np.int64)
    with pytest.raises(ValueError, match="grow"):
        det.score(np.array([2]), one, np.array([1.0]))
    with pytest.raises(ValueError, match="same length"):
        det.update(np.array([0, 1]), one, np.array([1.0]))
