"""EWMA control chart: a reading's distance from an exponentially weighted mean, in EW stds."""

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


class EwmaChart(SlotDetector):
    """EW mean and variance per series; the score grows with ``|x - mean| / std``.

    Until ``1 / alpha`` readings are learned the weight is ``1 / n`` (a plain running mean and
    variance), so early estimates are not biased towards zero. The chart speaks after ``warmup``
    learned readings.

    Args:
        alpha: Weight of the newest reading in the mean and variance (0 < alpha <= 1).
        warmup: Learned readings before the score is non-zero.
        z_scale: Deviation (in std units) that scores 0.5.
        min_std: Floor added to the std so that a flat series does not divide by zero.

    Example:
        >>> import numpy as np
        >>> d = EwmaChart(alpha=0.5, warmup=3)
        >>> d.grow(1)
        >>> s, t = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        >>> for x in [10.0, 11.0, 10.0, 11.0]:
        ...     d.update(s, t, np.array([x]))
        >>> near, far = d.score(s, t, np.array([10.5])), d.score(s, t, np.array([30.0]))
        >>> bool(near[0] < 0.5 < far[0])
        True
    """

    _state: ClassVar[StateSpec] = {
        "mean": (np.float64, 0.0, ()),
        "var": (np.float64, 0.0, ()),
        "count": (np.int64, 0, ()),
    }

    def __init__(
        self, alpha: float = 0.05, warmup: int = 30, z_scale: float = 3.0, min_std: float = 1e-6
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha, self.warmup, self.z_scale, self.min_std = alpha, warmup, z_scale, min_std
        super().__init__()

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "warmup": self.warmup, "z_scale": self.z_scale,
                "min_std": self.min_std}

    def deviation(self, slots: Int64Array, values: Float64Array) -> Float64Array:
        """``|x - mean| / (std + min_std)`` against the learned state (no warm-up masking)."""
        return np.abs(values - self.mean[slots]) / (np.sqrt(self.var[slots]) + self.min_std)

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1]; 0 while the series is warming up."""
        self._check(slots, ts_ms, values)
        ready = self.count[slots] >= self.warmup
        return np.where(ready, squash(self.deviation(slots, values), self.z_scale), 0.0)

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Learn readings (all but ``skip``) into the EW mean and variance."""
        self._check(slots, ts_ms, values)
        learn = learn_mask(len(slots), skip)
        s, x = slots[learn], values[learn]
        a = np.maximum(self.alpha, 1.0 / (self.count[s] + 1))
        d = x - self.mean[s]
        self.mean[s] += a * d
        self.var[s] = (1.0 - a) * (self.var[s] + a * d * d)
        self.count[s] += 1
