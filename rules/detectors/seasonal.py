"""Seasonal baseline: what is normal for this hour of the day on a weekday or a weekend day."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rules.detectors.base import (
    BoolArray,
    Float64Array,
    Int64Array,
    SlotDetector,
    StateSpec,
    check_alpha,
    ew_moments,
    learn_mask,
    squash,
    standardized,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
N_CELLS = 48  # 24 hours x (weekday, weekend)
COUNT_MAX = int(np.iinfo(np.uint16).max)  # a cell's count saturates there


def season_cell(ts_ms: Int64Array, utc_offset_ms: int = 0) -> Int64Array:
    """Cell index ``24 * is_weekend + hour_of_day`` of local times ``ts_ms + utc_offset_ms``.

    Example:
        >>> import numpy as np
        >>> # 1970-01-03 (a Saturday) 05:00 UTC, and Monday 1970-01-05 23:00 UTC
        >>> season_cell(np.array([2 * 86_400_000 + 5 * 3_600_000, 5 * 86_400_000 - 3_600_000]))
        array([29, 23])
    """
    local = ts_ms + utc_offset_ms
    hour = (local // HOUR_MS) % 24
    weekday = (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return np.where(weekday >= 5, 24, 0) + hour


class SeasonalBaseline(SlotDetector):
    """EW mean and variance per series and per (hour of day x weekday/weekend) cell.

    State is float32 (48 cells x mean and variance = 384 bytes per series) plus a uint16 count
    per cell (96 bytes); arithmetic is float64, rounded to float32 when stored. A cell's mean
    and variance sit side by side (``moments[slot, cell] = (mean, var)``) and are read and
    written as one 8-byte word: the arrays are far larger than the CPU caches and a round reads
    cells at random. A cell speaks once it has learned ``warmup`` readings; until then it scores
    0.

    Args:
        alpha: Weight of the newest reading in its cell (``1 / n`` while that is larger).
        warmup: Readings a cell must learn before it scores.
        z_scale: Deviation (in the cell's std units) that scores 0.5.
        min_std: Floor added to the cell's std.
        utc_offset_ms: Offset of local time from the timestamps' clock (the city's time zone).

    Example:
        >>> import numpy as np
        >>> d = SeasonalBaseline(warmup=2)
        >>> d.grow(1)
        >>> s = np.zeros(1, dtype=np.int64)
        >>> for day in range(3):  # Thursday to Saturday 1970-01-01.., 08:00: weekday cell only
        ...     d.update(s, np.array([day * 86_400_000 + 8 * 3_600_000]), np.array([20.0 + day]))
        >>> t = np.array([7 * 86_400_000 + 8 * 3_600_000])  # next Thursday 08:00
        >>> near, far = d.score(s, t, np.array([20.5])), d.score(s, t, np.array([40.0]))
        >>> bool(near[0] < 0.5 < far[0])
        True
    """

    _state: ClassVar[StateSpec] = {
        "moments": (np.float32, 0.0, (N_CELLS, 2)),
        "count": (np.uint16, 0, (N_CELLS,)),
    }

    def __init__(
        self,
        alpha: float = 0.1,
        warmup: int = 3,
        z_scale: float = 3.0,
        min_std: float = 1e-3,
        utc_offset_ms: int = 0,
    ) -> None:
        self.alpha, self.warmup, self.z_scale = check_alpha(alpha), warmup, z_scale
        self.min_std, self.utc_offset_ms = min_std, utc_offset_ms
        super().__init__()

    def _cells(self, slots: Int64Array, ts_ms: Int64Array) -> Int64Array:
        """Flat index ``slot * N_CELLS + cell`` of each reading into the raveled state arrays.

        A round usually falls within one local hour: then the cell is computed once.
        """
        if len(ts_ms) == 0:
            return slots * N_CELLS
        first, last = ts_ms.min(), ts_ms.max()
        if (first + self.utc_offset_ms) // HOUR_MS == (last + self.utc_offset_ms) // HOUR_MS:
            return slots * N_CELLS + int(season_cell(first, self.utc_offset_ms))
        return slots * N_CELLS + season_cell(ts_ms, self.utc_offset_ms)

    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat views (never copies) for 1-d indexing: (mean, var) pairs as words, and counts."""
        return (np.reshape(self.moments, -1, copy=False).view(np.int64),
                np.reshape(self.count, -1, copy=False))

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1] against their cell; 0 while the cell is warming up."""
        self._check(slots, ts_ms, values)
        _, mean, var, n = self._gather_and_remember(slots, ts_ms, values)
        z = np.abs(standardized(values, mean, var, self.min_std))
        return np.where(n >= self.warmup, squash(z, self.z_scale), 0.0)

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Learn readings (all but ``skip``) into their cells."""
        self._check(slots, ts_ms, values)
        learn = learn_mask(len(slots), skip)
        gathered = self._recall_or_gather(slots, ts_ms, values)
        if not learn.all():
            gathered, values = tuple(a[learn] for a in gathered), values[learn]
        i, mean, var, n = gathered
        moments, count = self._flat()
        pairs = np.empty((len(i), 2), dtype=np.float32)  # rounded to float32 when stored
        pairs[:, 0], pairs[:, 1] = ew_moments(mean, var, n, values, self.alpha)
        moments[i] = pairs.view(np.int64)[:, 0]
        count[i] = np.minimum(n + 1, COUNT_MAX)

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Int64Array, Float64Array, Float64Array, Int64Array]:
        """(flat index, mean, var, count) of the readings' cells, in float64 and int64."""
        i = self._cells(slots, ts_ms)
        moments, count = self._flat()
        pairs = moments[i].view(np.float32).reshape(-1, 2)
        return (i, pairs[:, 0].astype(np.float64), pairs[:, 1].astype(np.float64),
                count[i].astype(np.int64))
