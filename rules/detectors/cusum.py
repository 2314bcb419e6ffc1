"""Two-sided CUSUM change-point detector on readings standardized by a slow EW baseline."""

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


class Cusum(SlotDetector):
    """Tabular CUSUM: upward and downward sums of standardized deviations beyond a drift ``k``.

    A reading is standardized against a slow EW mean/variance (weights by elapsed time, see
    `rules.detectors.base.elapsed_weight`; ``1 / n`` at first).
    ``up = max(0, up + z - k)`` and ``down = max(0, down - z - k)`` accumulate evidence of a
    sustained shift; the score is ``max(up, down) / (max(up, down) + h)`` (0.5 at the decision
    threshold ``h``). When a sum reaches ``h`` the change is signalled and both sums restart
    from zero. Confirmed anomalies (``skip``) still accumulate evidence but are not learned
    into the baseline.

    Args:
        tau_s: Time constant of the baseline mean and variance (seconds).
        k: Drift allowance in std units (half the shift to detect).
        h: Decision threshold in std units.
        warmup: Learned readings before sums accumulate.
        min_std: Floor added to the baseline std.

    Example:
        >>> import numpy as np
        >>> d = Cusum(warmup=5)
        >>> d.grow(1)
        >>> s, t = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        >>> for i, x in enumerate([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]):  # a reading a minute
        ...     d.update(s, t + i * 60_000, np.array([x]))
        >>> scores = []
        >>> for i in range(6, 9):  # a sustained shift to 2.0: evidence grows reading by reading
        ...     scores.append(round(float(d.score(s, t + i * 60_000, np.array([2.0]))[0]), 2))
        ...     d.update(s, t + i * 60_000, np.array([2.0]))
        >>> scores
        [0.39, 0.48, 0.52]
    """

    _state: ClassVar[StateSpec] = {
        "mean": (np.float64, 0.0, ()),
        "var": (np.float64, 0.0, ()),
        "count": (np.int64, 0, ()),
        "up": (np.float64, 0.0, ()),
        "down": (np.float64, 0.0, ()),
        "last_ts": (np.int64, 0, ()),
    }

    def __init__(
        self,
        tau_s: float = 30_000.0,
        k: float = 0.5,
        h: float = 5.0,
        warmup: int = 30,
        min_std: float = 1e-6,
    ) -> None:
        self.tau_s, self._tau_ms, self.k, self.h = tau_s, check_tau(tau_s), k, h
        self.warmup, self.min_std = warmup, min_std
        super().__init__()

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Float64Array, Float64Array, Float64Array, Float64Array, Int64Array]:
        """(up, down, mean, var, count): the sums the readings bring and the baseline read."""
        mean, var, count = self.mean[slots], self.var[slots], self.count[slots]
        ready = count >= self.warmup
        z = standardized(values, mean, var, self.min_std)
        up = np.where(ready, np.maximum(0.0, self.up[slots] + z - self.k), 0.0)
        down = np.where(ready, np.maximum(0.0, self.down[slots] - z - self.k), 0.0)
        return up, down, mean, var, count

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1] from the sums they would bring; 0 while warming up."""
        self._check(slots, ts_ms, values)
        sums = self._gather_and_remember(slots, ts_ms, values)
        return squash(np.maximum(sums[0], sums[1]), self.h)

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Commit the sums (restarting those that reached ``h``), then learn the baseline."""
        self._check(slots, ts_ms, values)
        up, down, mean, var, count = self._recall_or_gather(slots, ts_ms, values)
        signalled = np.maximum(up, down) >= self.h
        self.up[slots] = np.where(signalled, 0.0, up)
        self.down[slots] = np.where(signalled, 0.0, down)
        learn = learn_mask(len(slots), skip)
        s = slots[learn]
        w = elapsed_weight(ts_ms[learn] - self.last_ts[s], self._tau_ms)
        self.mean[s], self.var[s] = ew_moments(
            mean[learn], var[learn], count[learn], values[learn], w)
        self.count[s] = count[learn] + 1
        self.last_ts[slots] = ts_ms
