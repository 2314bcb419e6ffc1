"""Robust z-score: distance from the median of a sliding window, in MAD units."""

from __future__ import annotations

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

MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its std


class RobustZ(SlotDetector):
    """Median/MAD z-score over each series' last ``window`` learned readings.

    Each series keeps a ring buffer of float32 values (memory: ``4 * window`` bytes per series).
    The median and MAD are exact: all ready slots of a call are gathered into one
    ``(n, window)`` matrix and reduced with ``np.median`` along the rows. The detector speaks
    once its window is full.

    Args:
        window: Ring-buffer length (odd keeps the median a single element).
        z_scale: Robust deviation that scores 0.5.
        min_std: Floor added to the scale so that a flat window does not divide by zero.

    Example:
        >>> import numpy as np
        >>> d = RobustZ(window=5)
        >>> d.grow(1)
        >>> s, t = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        >>> for x in [1.0, 2.0, 3.0, 2.0, 1.0]:
        ...     d.update(s, t, np.array([x]))
        >>> round(float(d.score(s, t, np.array([8.0]))[0]), 3)  # median 2, MAD 1 -> z ~ 4.05
        0.574
    """

    def __init__(self, window: int = 31, z_scale: float = 3.0, min_std: float = 1e-6) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window, self.z_scale, self.min_std = window, z_scale, min_std
        super().__init__()

    def _state_spec(self) -> StateSpec:
        return {
            "ring": (np.float32, 0.0, (self.window,)),
            "pos": (np.int32, 0, ()),
            "count": (np.int32, 0, ()),
        }

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1]; 0 until the series' window is full."""
        self._check(slots, ts_ms, values)
        out = np.zeros(len(slots))
        ready = self.count[slots] >= self.window
        if ready.any():
            rows = self.ring[slots[ready]].astype(np.float64)
            med = np.median(rows, axis=1)
            mad = np.median(np.abs(rows - med[:, None]), axis=1)
            z = np.abs(values[ready] - med) / (MAD_TO_STD * mad + self.min_std)
            out[ready] = squash(z, self.z_scale)
        return out

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Push readings (all but ``skip``) into the ring buffers."""
        self._check(slots, ts_ms, values)
        learn = learn_mask(len(slots), skip)
        s = slots[learn]
        self.ring[s, self.pos[s]] = values[learn]
        self.pos[s] = (self.pos[s] + 1) % self.window
        self.count[s] = np.minimum(self.count[s] + 1, self.window)
