"""Exponential backoff with jitter, for every reconnect and retry loop of ingest.

Delays double from `initial_s` up to `max_s`; each is drawn from [0.5, 1.5) times
its nominal value, so many clients cut off by the same outage do not all come back
in the same instant.

    backoff = Backoff(0.5, 30.0)
    backoff.next_s()   # ~0.5, then ~1, ~2, ... ~30
    backoff.reset()    # after a success
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float, max_s: float, *, rng: random.Random | None = None
                 ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s, self.max_s = initial_s, max_s
        self._nominal_s = initial_s
        self._rng = rng or random.Random()

    def next_s(self) -> float:
        """The delay to wait now; the next one is twice as long (up to `max_s`)."""
        delay_s = self._nominal_s * self._rng.uniform(0.5, 1.5)
        self._nominal_s = min(2 * self._nominal_s, self.max_s)
        return delay_s

    def reset(self) -> None:
        self._nominal_s = self.initial_s
