"""Columnar engine state: arrays indexed by series slot, or by a rule's member row.

``SeriesState`` holds what every rule reads about a series (last reading, start of the current run
of equal values for ``stuck``, last out-of-range reading for ``out_of_range``) and the platform's
own recent downtimes, which ``stale`` does not count as a device's silence. ``Ring`` keeps
the recent readings of each member series of a group of rules (rules matching the same series)
for window functions, bounded by the largest `rules.engine.plan.ring_capacity` of the group.
``RuleState`` holds each (rule, subject) condition state, when its pending ``for`` timer
started and the severity last reported.
"""

from __future__ import annotations

import numpy as np

NEVER = np.iinfo(np.int64).min  # last_ts of a series that has not reported yet
INACTIVE, PENDING, FIRING = 0, 1, 2  # condition states; CLEARED is only ever emitted
CLEARED = 3


class SeriesState:
    """Per-slot last reading; grows with the registry (slots are append-only)."""

    FIELDS = ("last_ts", "last_value", "run_start_ts", "fault_ts")  # what rebuilds carry over

    def __init__(self, n_slots: int) -> None:
        self.last_ts = np.full(n_slots, NEVER, dtype=np.int64)
        self.last_value = np.full(n_slots, np.nan)
        self.run_start_ts = np.full(n_slots, NEVER, dtype=np.int64)
        self.fault_ts = np.full(n_slots, NEVER, dtype=np.int64)  # last out-of-range reading
        # (stopped, resumed) of the platform's recent downtimes, oldest first; resumed None:
        # not listening yet (see `rules.engine.restore.seed_downtime`)
        self.downtimes: list[tuple[int, int | None]] = []

    def grow(self, n_slots: int) -> None:
        extra = n_slots - len(self.last_ts)
        if extra > 0:
            self.last_ts = np.concatenate([self.last_ts, np.full(extra, NEVER, dtype=np.int64)])
            self.last_value = np.concatenate([self.last_value, np.full(extra, np.nan)])
            self.run_start_ts = np.concatenate(
                [self.run_start_ts, np.full(extra, NEVER, dtype=np.int64)]
            )
            self.fault_ts = np.concatenate([self.fault_ts, np.full(extra, NEVER, dtype=np.int64)])

    def record(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> None:
        """Take one round of accepted readings (each slot at most once)."""
        changed = (self.last_value[slots] != values) | (self.last_ts[slots] == NEVER)
        self.run_start_ts[slots] = np.where(changed, ts_ms, self.run_start_ts[slots])
        self.last_ts[slots] = ts_ms
        self.last_value[slots] = values

    def record_faults(self, slots: np.ndarray, ts_ms: np.ndarray) -> None:
        """Take out-of-range readings (each slot at most once): they are heard, never values."""
        self.fault_ts[slots] = np.maximum(self.fault_ts[slots], ts_ms)

    def heard_ts(self, slots: np.ndarray, last_ts: np.ndarray,
                 t_ms: np.ndarray | int) -> np.ndarray:
        """When each series was last heard from (``last_ts``, its reading, or a fault), as seen
        at ``t_ms`` by a platform that counts silence only while it listened: a series is heard
        that much later as the platform's `downtimes` overlap its silence. A downtime
        still open (resumed None) lasts until ``t_ms``.

        So a restart after a long stop does not find every device silent, while a device that
        was already silent before the stop stays as silent as it was.
        """
        heard = np.maximum(last_ts, self.fault_ts[slots])
        shift: np.ndarray | int = 0
        for stopped, resumed in self.downtimes:
            back = t_ms if resumed is None else np.minimum(resumed, t_ms)
            shift = shift + np.maximum(back - np.maximum(heard, stopped), 0)
        return heard + shift

    def resume(self, now_ms: int) -> bool:
        """Close a downtime left open at ``now_ms`` (the platform listens again); whether one
        was open."""
        if not self.downtimes or self.downtimes[-1][1] is not None:
            return False
        stopped = self.downtimes[-1][0]
        self.downtimes[-1] = (stopped, max(stopped, now_ms))
        return True

    @property
    def nbytes(self) -> int:
        return (self.last_ts.nbytes + self.last_value.nbytes + self.run_start_ts.nbytes
                + self.fault_ts.nbytes)


class Ring:
    """The newest ``cap`` readings of each member series of a rule group (rules sharing members).

    Each entry is one (ts, value) pair of int64 words (the value's float64 bits), so that reading
    one entry of a row touches one cache line, not one in each of two arrays: the rings of a city
    are far larger than the CPU caches and a round reads rows at random.
    """

    def __init__(self, n_rows: int, cap: int) -> None:
        self.cap = cap
        self.entries = np.zeros((n_rows, cap, 2), dtype=np.int64)
        self.head = np.zeros(n_rows, dtype=np.int32)  # position of the newest reading
        self.count = np.zeros(n_rows, dtype=np.int32)

    def push(self, rows: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> None:
        head = (self.head[rows] + 1) % self.cap
        self.head[rows] = head
        at = 2 * (rows * self.cap + head)  # flat word positions: much faster than [rows, head]
        words = np.reshape(self.entries, -1, copy=False)
        words[at] = ts_ms
        words[at + 1] = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
        self.count[rows] = np.minimum(self.count[rows] + 1, self.cap)

    def newest_first(
        self, rows: np.ndarray, cap: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts, value, held) matrices, column 0 the newest reading, of a rule keeping ``cap``.

        Only as many columns as the fullest row holds (at least one) are gathered: columns past
        every row's count hold nothing, so leaving them out changes no window result.
        """
        count = np.minimum(self.count[rows], cap)
        k = np.arange(max(1, int(count.max(initial=0))))
        pos = (self.head[rows, None] - k) % self.cap + (rows * self.cap)[:, None]
        got = np.reshape(self.entries, (-1, 2), copy=False).take(pos, axis=0)
        return got[..., 0], got[..., 1].view(np.float64), k < count[:, None]

    def carry(self, old: Ring, old_rows: np.ndarray, rows: np.ndarray) -> None:
        """Copy the readings of ``old_rows`` of ``old`` into ``rows`` (newest kept if smaller)."""
        ts, value, held = old.newest_first(old_rows, old.cap)
        n = np.minimum(held.sum(axis=1), self.cap)
        for k in range(min(self.cap, ts.shape[1]) - 1, -1, -1):  # oldest first
            sel = np.flatnonzero(n > k)
            self.push(rows[sel], ts[sel, k], value[sel, k])

    @property
    def nbytes(self) -> int:
        return self.entries.nbytes + self.head.nbytes + self.count.nbytes


class RuleState:
    """Condition state per subject (a member series, or an area) of one rule."""

    def __init__(self, n_rows: int) -> None:
        self.state = np.zeros(n_rows, dtype=np.int8)
        self.since_ms = np.zeros(n_rows, dtype=np.int64)
        self.severity = np.zeros(n_rows, dtype=np.int8)

    @property
    def nbytes(self) -> int:
        return self.state.nbytes + self.since_ms.nbytes + self.severity.nbytes
