"""EWMA control chart: a reading's distance from an exponentially weighted mean, in EW stds."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rules.detectors.base import (
    BoolArray,
    Float64Array,
    Int64Array,
    SlotDetector,
    StateSpec,
    check_tau,
    elapsed_weight,
    ew_moments,
    learn_mask,
    squash,
    standardized,
)


class EwmaChart(SlotDetector):
    """EW mean and variance per series; the score grows with ``|x - mean| / std``.

    A reading's weight follows the time since the series' previous reading
    (`rules.detectors.base.elapsed_weight`); while ``1 / n`` is larger it is used instead (a
    plain running mean and variance), so early estimates are not biased towards zero. The chart
    speaks after ``warmup`` learned readings.

    Args:
        tau_s: Time constant of the mean and variance (seconds).
        warmup: Learned readings before the score is non-zero.
        z_scale: Deviation (in std units) that scores 0.5.
        min_std: Floor added to the std so that a flat series does not divide by zero.

    Example:
        >>> import numpy as np
        >>> d = EwmaChart(tau_s=60.0, warmup=3)
        >>> d.grow(1)
        >>> s, t = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        >>> for i, x in enumerate([10.0, 11.0, 10.0, 11.0]):  # a reading a minute
        ...     d.update(s, t + i * 60_000, np.array([x]))
        >>> near, far = d.score(s, t, np.array([10.5])), d.score(s, t, np.array([30.0]))
        >>> bool(near[0] < 0.5 < far[0])
        True
    """

    _state: ClassVar[StateSpec] = {
        "mean": (np.float64, 0.0, ()),
        "var": (np.float64, 0.0, ()),
        "count": (np.int64, 0, ()),
        "last_ts": (np.int64, 0, ()),
    }

    def __init__(
        self, tau_s: float = 6000.0, warmup: int = 30, z_scale: float = 3.0,
        min_std: float = 1e-6,
    ) -> None:
        self.tau_s, self._tau_ms, self.warmup = tau_s, check_tau(tau_s), warmup
        self.z_scale, self.min_std = z_scale, min_std
        super().__init__()

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Float64Array, Float64Array, Int64Array]:
        """(mean, var, count) of the readings' series."""
        return self.mean[slots], self.var[slots], self.count[slots]

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1]; 0 while the series is warming up."""
        self._check(slots, ts_ms, values)
        mean, var, count = self._gather_and_remember(slots, ts_ms, values)
        z = np.abs(standardized(values, mean, var, self.min_std))
        return np.where(count >= self.warmup, squash(z, self.z_scale), 0.0)

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
        mean, var, count = (a[learn] for a in self._recall_or_gather(slots, ts_ms, values))
        s = slots[learn]
        w = elapsed_weight(ts_ms[learn] - self.last_ts[s], self._tau_ms)
        self.mean[s], self.var[s] = ew_moments(mean, var, count, values[learn], w)
        self.count[s] = count + 1
        self.last_ts[slots] = ts_ms
