"""Seasonal baseline: what is normal for this hour of the day on a weekday or a weekend day."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rules.detectors.base import (
    BoolArray,
    Float64Array,
    Int64Array,
    SlotDetector,
    StateSpec,
    learn_mask,
    squash,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
N_CELLS = 48  # 24 hours x (weekday, weekend)


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
    per cell (96 bytes); arithmetic is float64, rounded to float32 when stored. A cell speaks
    once it has learned ``warmup`` readings; until then it scores 0.

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
        "mean": (np.float32, 0.0, (N_CELLS,)),
        "var": (np.float32, 0.0, (N_CELLS,)),
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
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha, self.warmup, self.z_scale = alpha, warmup, z_scale
        self.min_std, self.utc_offset_ms = min_std, utc_offset_ms
        super().__init__()

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "warmup": self.warmup, "z_scale": self.z_scale,
                "min_std": self.min_std, "utc_offset_ms": self.utc_offset_ms}

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1] against their cell; 0 while the cell is warming up."""
        self._check(slots, ts_ms, values)
        c = season_cell(ts_ms, self.utc_offset_ms)
        mean = self.mean[slots, c].astype(np.float64)
        std = np.sqrt(self.var[slots, c].astype(np.float64))
        z = np.abs(values - mean) / (std + self.min_std)
        return np.where(self.count[slots, c] >= self.warmup, squash(z, self.z_scale), 0.0)

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
        s, x = slots[learn], values[learn]
        c = season_cell(ts_ms[learn], self.utc_offset_ms)
        n = self.count[s, c].astype(np.int64)
        a = np.maximum(self.alpha, 1.0 / (n + 1))
        mean = self.mean[s, c].astype(np.float64)
        d = x - mean
        self.mean[s, c] = (mean + a * d).astype(np.float32)
        self.var[s, c] = ((1.0 - a) * (self.var[s, c].astype(np.float64) + a * d * d)).astype(
            np.float32
        )
        self.count[s, c] = np.minimum(n + 1, np.iinfo(np.uint16).max).astype(np.uint16)
