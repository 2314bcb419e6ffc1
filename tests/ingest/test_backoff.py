"""Reconnect and retry waits: doubling, capped, jittered, reset after a success."""

from __future__ import annotations

import random

import pytest

from ingest.backoff import Backoff


def test_waits_double_up_to_the_cap_with_jitter_around_each() -> None:
    backoff = Backoff(0.5, 4.0, rng=random.Random(7))
    waits = [backoff.next_s() for _ in range(7)]
    for wait, nominal in zip(waits, [0.5, 1, 2, 4, 4, 4, 4], strict=True):
        assert 0.5 * nominal <= wait < 1.5 * nominal
    assert len(set(waits[3:])) == 4  # at the cap, still not one fixed instant


def test_reset_starts_again_from_the_first_wait() -> None:
    backoff = Backoff(1.0, 30.0, rng=random.Random(1))
    for _ in range(5):
        backoff.next_s()
    backoff.reset()
    assert 0.5 <= backoff.next_s() < 1.5


def test_clients_cut_off_together_do_not_come_back_together() -> None:
    first = [Backoff(1.0, 30.0, rng=random.Random(seed)).next_s() for seed in range(20)]
    assert max(first) - min(first) > 0.5


@pytest.mark.parametrize(("initial_s", "max_s"), [(0, 1), (2, 1), (-1, 5)])
def test_nonsense_bounds_are_refused(initial_s: float, max_s: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial_s, max_s)
