"""Columnar engine state: arrays indexed by series slot, or by a rule's member row.

``SeriesState`` holds what every rule reads about a series (last reading, start of the current
run of equal values for ``stuck``). ``Ring`` keeps a rule's recent readings per member series for
window functions, bounded by `rules.plan.ring_capacity`. ``RuleState`` holds each (rule, subject)
condition state, when its pending ``for`` timer started and the severity last reported.
"""

from __future__ import annotations

import numpy as np

NEVER = np.iinfo(np.int64).min  # last_ts of a series that has not reported yet
INACTIVE, PENDING, FIRING = 0, 1, 2  # condition states; CLEARED is only ever emitted
CLEARED = 3


class SeriesState:
    """Per-slot last reading; grows with the registry (slots are append-only)."""

    def __init__(self, n_slots: int) -> None:
        self.last_ts = np.full(n_slots, NEVER, dtype=np.int64)
        self.last_value = np.full(n_slots, np.nan)
        self.run_start_ts = np.full(n_slots, NEVER, dtype=np.int64)

    def grow(self, n_slots: int) -> None:
        extra = n_slots - len(self.last_ts)
        if extra > 0:
            self.last_ts = np.concatenate([self.last_ts, np.full(extra, NEVER, dtype=np.int64)])
            self.last_value = np.concatenate([self.last_value, np.full(extra, np.nan)])
            self.run_start_ts = np.concatenate(
                [self.run_start_ts, np.full(extra, NEVER, dtype=np.int64)]
            )

    def record(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> None:
        """Take one round of accepted readings (each slot at most once)."""
        changed = (self.last_value[slots] != values) | (self.last_ts[slots] == NEVER)
        self.run_start_ts[slots] = np.where(changed, ts_ms, self.run_start_ts[slots])
        self.last_ts[slots] = ts_ms
        self.last_value[slots] = values

    @property
    def nbytes(self) -> int:
        return self.last_ts.nbytes + self.last_value.nbytes + self.run_start_ts.nbytes


class Ring:
    """The newest ``cap`` readings of each member series of one rule."""

    def __init__(self, n_rows: int, cap: int) -> None:
        self.cap = cap
        self.ts = np.zeros((n_rows, cap), dtype=np.int64)
        self.value = np.zeros((n_rows, cap))
        self.head = np.zeros(n_rows, dtype=np.int64)  # position of the newest reading
        self.count = np.zeros(n_rows, dtype=np.int64)

    def push(self, rows: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> None:
        head = (self.head[rows] + 1) % self.cap
        self.head[rows] = head
        self.ts[rows, head] = ts_ms
        self.value[rows, head] = values
        self.count[rows] = np.minimum(self.count[rows] + 1, self.cap)

    def newest_first(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts, value, held) matrices of shape (len(rows), cap), column 0 the newest reading."""
        k = np.arange(self.cap)
        pos = (self.head[rows, None] - k) % self.cap
        held = k < self.count[rows, None]
        return self.ts[rows[:, None], pos], self.value[rows[:, None], pos], held

    @property
    def nbytes(self) -> int:
        return self.ts.nbytes + self.value.nbytes + self.head.nbytes + self.count.nbytes


class RuleState:
    """Condition state per subject (a member series, or an area) of one rule."""

    def __init__(self, n_rows: int) -> None:
        self.state = np.zeros(n_rows, dtype=np.int8)
        self.since_ms = np.zeros(n_rows, dtype=np.int64)
        self.severity = np.zeros(n_rows, dtype=np.int8)

    @property
    def nbytes(self) -> int:
        return self.state.nbytes + self.since_ms.nbytes + self.severity.nbytes
