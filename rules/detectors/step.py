"""Step chart: the change from a series' previous reading, against the usual size of changes.

A prediction-error score with the simplest forecast (the last value): it reacts on the first
reading of a jump or drop, before a mean-based chart has moved, and stays quiet on slow trends.
"""

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


class StepChart(SlotDetector):
    """EW mean and variance of consecutive differences ``x - last`` per series.

    The first reading of a series only sets ``last``. Later readings are scored by
    ``|x - last - mean| / (std + min_std)``; learning updates the EW statistics of the difference
    (weight by the time since the previous reading, see `rules.detectors.base.elapsed_weight`,
    or ``1 / n`` while that is larger) unless the reading is skipped.
    ``last`` always moves to the newest reading, skipped or not, so that after a level shift the
    chart judges the steps from the new level. The chart speaks after ``warmup`` learned steps.

    Args:
        tau_s: Time constant of the differences' mean and variance (seconds).
        warmup: Learned differences before the score is non-zero.
        z_scale: Deviation (in std units) that scores 0.5.
        min_std: Floor added to the std so that a flat series does not divide by zero.

    Example:
        >>> import numpy as np
        >>> d = StepChart(tau_s=60.0, warmup=3)
        >>> d.grow(1)
        >>> s, t = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        >>> for i, x in enumerate([10.0, 11.0, 10.0, 11.0, 10.0]):  # a reading a minute
        ...     d.update(s, t + i * 60_000, np.array([x]))
        >>> small, jump = d.score(s, t, np.array([11.0])), d.score(s, t, np.array([30.0]))
        >>> bool(small[0] < 0.5 < jump[0])
        True
    """

    _state: ClassVar[StateSpec] = {
        "last": (np.float64, 0.0, ()),
        "mean": (np.float64, 0.0, ()),
        "var": (np.float64, 0.0, ()),
        "count": (np.int64, 0, ()),
        "last_ts": (np.int64, 0, ()),
    }

    def __init__(
        self, tau_s: float = 30_000.0, warmup: int = 30, z_scale: float = 3.0,
        min_std: float = 1e-6,
    ) -> None:
        self.tau_s, self._tau_ms, self.warmup = tau_s, check_tau(tau_s), warmup
        self.z_scale, self.min_std = z_scale, min_std
        super().__init__()

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Float64Array, Float64Array, Float64Array, Int64Array]:
        """(last, mean, var, count) of the readings' series."""
        return self.last[slots], self.mean[slots], self.var[slots], self.count[slots]

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1]; 0 until ``warmup`` steps are learned."""
        self._check(slots, ts_ms, values)
        last, mean, var, count = self._gather_and_remember(slots, ts_ms, values)
        z = np.abs(standardized(values - last, mean, var, self.min_std))
        return np.where(count > self.warmup, squash(z, self.z_scale), 0.0)

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Learn the steps of readings (all but ``skip``); every reading becomes ``last``."""
        self._check(slots, ts_ms, values)
        gathered = self._recall_or_gather(slots, ts_ms, values)
        started = gathered[3] > 0
        learn = learn_mask(len(slots), skip) & started
        last, mean, var, count = (a[learn] for a in gathered)
        s = slots[learn]
        w = elapsed_weight(ts_ms[learn] - self.last_ts[s], self._tau_ms)
        self.mean[s], self.var[s] = ew_moments(  # the first reading taught no step: n - 1
            mean, var, count - 1, values[learn] - last, w)
        self.count[slots] = gathered[3] + (learn | ~started)
        self.last[slots] = values
        self.last_ts[slots] = ts_ms
