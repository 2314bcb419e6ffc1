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
A reading from the future is then one ahead of where the other devices' readings are
arriving (`ArrivalFrontier`), not of the wall clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

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


class ArrivalFrontier:
    """How far the arriving readings have reached, for refusing readings from the future while
    `now` follows the readings (`clock = "readings"`), where the wall clock cannot tell.

    A batch of at least `company` series moves the frontier up to the (lower) median of its
    series' newest times (one device's skewed clock needs company to move it; it never goes
    back); between such batches the frontier runs on at the pace the readings have kept against
    the wall clock, plus `slack_s` of it. Only company says what the future is: a lone stream
    (a replayed recording, whose gaps no pace foretells) is never ahead of itself, so no limit
    is set until the pace is known (`pace_after_s` of arrivals) nor once no company has
    arrived for `quiet_s`.
    """

    def __init__(self, slack_s: float = 2.0, pace_after_s: float = 1.0, company: int = 8,
                 quiet_s: float = 10.0, wall: Callable[[], float] = time.monotonic) -> None:
        self._slack_s, self._pace_after_s, self._wall = slack_s, pace_after_s, wall
        self._company, self._quiet_s = company, quiet_s
        self._reach_ms: int | None = None
        self._moved_at = 0.0  # wall seconds when the frontier last moved
        self._heard_at = 0.0  # wall seconds when company last arrived
        self._anchor: tuple[float, int] | None = None  # (wall s, reach) the pace is measured from
        self._pace: float | None = None  # readings-ms per wall-ms, never below 1
        self._lock = threading.Lock()

    def observe(self, slot: np.ndarray, ts_ms: np.ndarray) -> None:
        """A batch of readings (series `slot`, time `ts_ms`) arrived."""
        if len(ts_ms) == 0:
            return
        order = np.lexsort((ts_ms, slot))
        last = np.flatnonzero(np.diff(slot[order], append=slot[order][-1] + 1))
        if len(last) < self._company:
            return
        newest = np.sort(ts_ms[order][last])
        reached = int(newest[(len(newest) - 1) // 2])
        with self._lock:
            t = self._heard_at = self._wall()
            if self._reach_ms is not None and reached <= self._reach_ms:
                return
            self._reach_ms, self._moved_at = reached, t
            if self._anchor is None:
                self._anchor = (t, reached)
            elif (span_s := t - self._anchor[0]) >= self._pace_after_s:
                pace = max(1.0, (reached - self._anchor[1]) / (span_s * 1000))
                self._pace = pace if self._pace is None else (self._pace + pace) / 2
                self._anchor = (t, reached)

    def limit_ms(self) -> int | None:
        """The newest time a reading arriving now may carry (before the future allowance);
        None while no company says."""
        with self._lock:
            t = self._wall()
            if self._reach_ms is None or self._pace is None or t - self._heard_at > self._quiet_s:
                return None
            return self._reach_ms + int(self._pace * (t - self._moved_at + self._slack_s) * 1000)
