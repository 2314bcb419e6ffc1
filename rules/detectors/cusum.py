"""Two-sided CUSUM change-point detector on readings standardized by a slow EW baseline."""

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


class Cusum(SlotDetector):
    """Tabular CUSUM: upward and downward sums of standardized deviations beyond a drift ``k``.

    A reading is standardized against a slow EW mean/variance (``1 / n`` weights at first).
    ``up = max(0, up + z - k)`` and ``down = max(0, down - z - k)`` accumulate evidence of a
    sustained shift; the score is ``max(up, down) / (max(up, down) + h)`` (0.5 at the decision
    threshold ``h``). When a sum reaches ``h`` the change is signalled and both sums restart
    from zero. Confirmed anomalies (``skip``) still accumulate evidence but are not learned
    into the baseline.

    Args:
        alpha: EW weight of the baseline mean and variance.
        k: Drift allowance in std units (half the shift to detect).
        h: Decision threshold in std units.
        warmup: Learned readings before sums accumulate.
        min_std: Floor added to the baseline std.

    Example:
        >>> import numpy as np
        >>> d = Cusum(warmup=5)
        >>> d.grow(1)
        >>> s, t = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        >>> for x in [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]:
        ...     d.update(s, t, np.array([x]))
        >>> scores = []
        >>> for _ in range(3):  # a sustained shift to 2.0: evidence grows reading by reading
        ...     scores.append(round(float(d.score(s, t, np.array([2.0]))[0]), 2))
        ...     d.update(s, t, np.array([2.0]))
        >>> scores
        [0.39, 0.48, 0.52]
    """

    _state: ClassVar[StateSpec] = {
        "mean": (np.float64, 0.0, ()),
        "var": (np.float64, 0.0, ()),
        "count": (np.int64, 0, ()),
        "up": (np.float64, 0.0, ()),
        "down": (np.float64, 0.0, ()),
    }

    def __init__(
        self,
        alpha: float = 0.01,
        k: float = 0.5,
        h: float = 5.0,
        warmup: int = 30,
        min_std: float = 1e-6,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha, self.k, self.h, self.warmup, self.min_std = alpha, k, h, warmup, min_std
        super().__init__()

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "k": self.k, "h": self.h, "warmup": self.warmup,
                "min_std": self.min_std}

    def _sums(self, slots: Int64Array, values: Float64Array) -> tuple[Float64Array, Float64Array]:
        ready = self.count[slots] >= self.warmup
        z = (values - self.mean[slots]) / (np.sqrt(self.var[slots]) + self.min_std)
        up = np.where(ready, np.maximum(0.0, self.up[slots] + z - self.k), 0.0)
        down = np.where(ready, np.maximum(0.0, self.down[slots] - z - self.k), 0.0)
        return up, down

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1] from the sums they would bring; 0 while warming up."""
        self._check(slots, ts_ms, values)
        up, down = self._sums(slots, values)
        return squash(np.maximum(up, down), self.h)

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Commit the sums (restarting those that reached ``h``), then learn the baseline."""
        self._check(slots, ts_ms, values)
        up, down = self._sums(slots, values)
        signalled = np.maximum(up, down) >= self.h
        self.up[slots] = np.where(signalled, 0.0, up)
        self.down[slots] = np.where(signalled, 0.0, down)
        learn = learn_mask(len(slots), skip)
        s, x = slots[learn], values[learn]
        a = np.maximum(self.alpha, 1.0 / (self.count[s] + 1))
        d = x - self.mean[s]
        self.mean[s] += a * d
        self.var[s] = (1.0 - a) * (self.var[s] + a * d * d)
        self.count[s] += 1
