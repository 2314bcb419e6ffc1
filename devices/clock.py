"""The platform's one wall-clock source: epoch milliseconds now.

Every package reads the time through `now_ms` (or takes it injected, as a `clock_ms`
argument defaulting to it), so a test can stand in for the clock and no two parts round the
time differently. It lives in `devices`, the lowest layer, because every package may import
`devices` and `devices` imports none of the others. Durations are measured with
`time.monotonic`/`perf_counter`, not with this clock.

A simulated city may run faster than real time (`urbanwatch simulate --speed`). The platform
then follows the readings' own time (`follow(ReadingClock())`, setting `clock = "readings"`):
`now_ms` is where the readings are, so `for` durations, staleness and escalation deadlines
count simulated time. The readings' time is the median time of the newest readings the rule
engine has judged, never going back: one device with a skewed clock cannot move it, a device
is stale only against readings the engine has seen (not ones still being stored), and it
stands still when the city falls silent (nothing turns stale because the simulator stopped).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

_following: ReadingClock | None = None


def now_ms() -> int:
    """Milliseconds since the Unix epoch (UTC), truncated; the readings' time when following."""
    clock = _following
    if clock is not None:
        return clock.now_ms()
    return time.time_ns() // 1_000_000


def follow(clock: ReadingClock | None) -> None:
    """Make `now_ms` follow `clock` (None: the wall clock again)."""
    global _following
    _following = clock


def following() -> ReadingClock | None:
    return _following


class ReadingClock:
    """Time that follows the readings: the (lower) median of the last `window` reading times,
    never going back; the wall clock until the first reading."""

    def __init__(self, window: int = 64) -> None:
        self._recent: deque[int] = deque(maxlen=window)
        self._now_ms: int | None = None
        self._lock = threading.Lock()

    def observe(self, ts_ms: int) -> None:
        """A reading stamped `ts_ms` was judged."""
        with self._lock:
            self._recent.append(ts_ms)
            ordered = sorted(self._recent)
            median = ordered[(len(ordered) - 1) // 2]  # the lower one: a late skew needs company
            if self._now_ms is None or median > self._now_ms:
                self._now_ms = median

    def observe_many(self, ts_ms: np.ndarray) -> None:
        """A batch of readings stamped `ts_ms` was judged: each counts once, in time order,
        through at most `window` evenly picked times (so one device cannot dominate)."""
        ordered = np.sort(ts_ms)
        picks = ordered[np.linspace(0, len(ordered) - 1, min(len(ordered),
                                                               self._recent.maxlen or 1))
                        .astype(np.int64)]
        for ts in picks.tolist():
            self.observe(int(ts))

    def now_ms(self) -> int:
        now = self._now_ms
        return time.time_ns() // 1_000_000 if now is None else now
