"""The combined score: base detectors' raw scores post-processed into an anomaly likelihood.

As Numenta's anomaly likelihood: what matters is not how high a raw score is but how unusual the
*recent* raw scores are against that series' own history of raw scores. A noisy series that
always scores 0.4 is normal at 0.4; a quiet one that jumps to 0.4 is not. Each base detector's
raw score gets its own likelihood and the combined score is the largest: taking the max of raw
scores first would let the noisiest detector drown the others (NAB dev 58.6 -> 66.1 with this
and the step and seasonal detectors in the base). A base detector that knows less than another
is judged in its context: a reading usual for its hour is not news to the level and drift
charts, nor a jump back to the usual level to the step chart (NAB dev, alert mode, all files:
126 -> 90 false alerts, 65 -> 64 windows hit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import log_ndtr

from rules.detectors.base import (
    BoolArray,
    Detector,
    Float64Array,
    Int64Array,
    SlotDetector,
    StateSpec,
    check_tau,
    elapsed_weight,
    ew_moments,
    learn_mask,
    standardized,
)
from rules.detectors.cusum import Cusum
from rules.detectors.ewma import EwmaChart
from rules.detectors.seasonal import SeasonalBaseline
from rules.detectors.step import StepChart

LN10 = float(np.log(10.0))


def likelihood_score(z: Float64Array, decades: float = 10.0) -> Float64Array:
    """Gaussian upper-tail probability of ``z`` on a log scale: ``-log10(Q(z)) / decades``.

    Clipped to [0, 1]; a tail probability of ``10 ** -decades`` scores 1.0. Monotone in ``z``.
    The log keeps resolution where ``1 - Q`` would round to 1.0 in float64.
    """
    return np.clip(-log_ndtr(-z) / (decades * LN10), 0.0, 1.0)


def default_base(timezone: str = "UTC") -> list[Detector]:
    """The base detectors of ``AnomalyLikelihood()``: level, season, step, drift.

    Not `RobustZ`: its window is a number of readings, not a time, and with it the dev files
    of NAB scored lower in alert mode (67.3 against 68.3, with 208 false alerts against 126).
    """
    return [EwmaChart(), SeasonalBaseline(alpha=0.3, warmup=2, timezone=timezone), StepChart(),
            Cusum()]


# (judged, context) positions in `default_base`: the level (0) and drift (3) charts know no
# season, so a reading usual for its hour (1) is not theirs to flag; the step chart (2) knows
# no level, so a jump that lands at the usual recent level (0) is not its to flag.
DEFAULT_CONTEXT = ((0, 1), (3, 1), (2, 0))


class AnomalyLikelihood(SlotDetector):
    """Combined detector: base raw scores -> recent average -> Gaussian tail likelihood.

    Per series and per base detector: ``recent`` is an EW average of its raw score (time
    constant ``short_tau_s``); the history of ``recent`` is an EW mean and variance (time
    constant ``long_tau_s``, or ``1 / n`` weights while those are larger). Weights follow the
    time since the series' previous reading (`rules.detectors.base.elapsed_weight`). The score
    is the largest, over the base detectors, log-scaled tail probability of ``recent`` under its
    history (``likelihood_score`` with ``decades``). As in Numenta's detector, a value outside
    the range seen so far (widened by ``range_tolerance`` of its width) scores 1.0 outright.

    A base detector may be judged in the context of another (``context``: pairs ``(judged,
    context)`` of positions in ``detectors``): where the context detector speaks (its raw score
    is above 0, see `rules.detectors.base`) and finds the reading usual (below
    ``explained_below``), the judged detector does not count towards the score. Its raw
    scores are still averaged and learned as usual: the context only decides whether they
    are news.

    A reading scoring at least ``confirm_at`` (or marked in ``skip``) is a confirmed anomaly:
    the base detectors and the history do not learn it (at most ``max_skip`` in a row, so a
    lasting level shift becomes the new normal), and for ``refractory_s`` after it scores are
    multiplied by ``damp`` so that one event raises one alert, not a string.

    Args:
        detectors: Base detectors (default: ``default_base(timezone)``).
        short_tau_s: Time constant of the recent raw-score average (seconds).
        long_tau_s: Time constant of the raw-score history (seconds).
        warmup: Learned readings before the score is non-zero.
        min_std: Floor on the history's std (raw-score units), so that tiny noise stays normal.
        decades: Tail probability ``10 ** -decades`` scores 1.0.
        confirm_at: Score at which a reading is a confirmed anomaly.
        max_skip: Most consecutive confirmed readings kept out of learning.
        refractory_s: Time after a confirmed anomaly during which scores are damped.
        damp: Factor on scores during the refractory period (0 silences them).
        range_tolerance: Widening of the seen range before a value is novel; None disables.
        timezone: The city's IANA time zone, for the default base's seasonal baseline.
        context: ``(judged, context)`` pairs of base detector positions (default:
            ``DEFAULT_CONTEXT`` with the default base, none with given ``detectors``).
        explained_below: Context raw score under which a reading is usual (0.5 is 3 std for
            the base charts' ``z_scale`` of 3).

    Example:
        >>> import numpy as np
        >>> d = AnomalyLikelihood(warmup=50)
        >>> d.grow(1)
        >>> s = np.zeros(1, dtype=np.int64)
        >>> t = lambda i: np.array([i * 300_000])  # a reading every 5 minutes
        >>> usual = [float(d.score_and_update(s, t(i), np.array([10.0 + np.sin(i / 5)]))[0])
        ...          for i in range(300)]
        >>> max(usual) < d.confirm_at, float(d.score(s, t(300), np.array([40.0]))[0])
        (True, 1.0)
    """

    _state: ClassVar[StateSpec] = {
        "count": (np.int64, 0, ()),
        "skipped": (np.int32, 0, ()),
        "last_ts": (np.int64, 0, ()),
        "quiet_until": (np.int64, 0, ()),
        "low": (np.float64, np.inf, ()),
        "high": (np.float64, -np.inf, ()),
    }

    def __init__(
        self,
        detectors: Sequence[Detector] | None = None,
        short_tau_s: float = 2_700.0,
        long_tau_s: float = 150_000.0,
        warmup: int = 200,
        min_std: float = 0.02,
        decades: float = 3.0,
        confirm_at: float = 0.99,
        max_skip: int = 50,
        refractory_s: float = 43_200.0,
        damp: float = 0.0,
        range_tolerance: float | None = 0.02,
        timezone: str = "UTC",
        context: Sequence[tuple[int, int]] | None = None,
        explained_below: float = 0.5,
    ) -> None:
        self.detectors = list(default_base(timezone) if detectors is None else detectors)
        if context is None:
            context = DEFAULT_CONTEXT if detectors is None else ()
        self.context = tuple((int(j), int(c)) for j, c in context)
        if any(not (0 <= j < len(self.detectors) and 0 <= c < len(self.detectors)) or j == c
               for j, c in self.context):
            raise ValueError(f"context pairs must name two base detectors: {self.context}")
        self.explained_below = explained_below
        self.short_tau_s, self.long_tau_s, self.warmup = short_tau_s, long_tau_s, warmup
        self._short_ms, self._long_ms = check_tau(short_tau_s), check_tau(long_tau_s)
        self.min_std, self.decades, self.confirm_at = min_std, decades, confirm_at
        self.max_skip, self.refractory_s, self.damp = max_skip, refractory_s, damp
        self.range_tolerance, self.timezone = range_tolerance, timezone
        super().__init__()

    def _state_spec(self) -> StateSpec:
        per_detector = (np.float64, 0.0, (len(self.detectors),))
        return {"recent": per_detector, "mean": per_detector, "var": per_detector, **self._state}

    def grow(self, n_slots: int) -> None:
        for d in self.detectors:
            d.grow(n_slots)
        super().grow(n_slots)

    def state_nbytes(self) -> int:
        return super().state_nbytes() + sum(d.state_nbytes() for d in self.detectors)  # type: ignore[attr-defined]

    def state_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Own state, then each base detector's under ``base<j>.``."""
        arrays = super().state_arrays()
        for j, d in enumerate(self.detectors):
            arrays |= {f"base{j}.{k}": v for k, v in d.state_arrays().items()}  # type: ignore[attr-defined]
        return arrays

    def copy_rows(self, arrays: dict[str, npt.NDArray[Any]], src: Int64Array,
                  dst: Int64Array) -> None:
        if not self.fits(arrays):
            raise ValueError(f"{type(self).__name__}: state arrays do not match")
        own, parts = self._split(arrays)
        self._copy_own(own, src, dst)
        for d, part in zip(self.detectors, parts, strict=True):
            d.copy_rows(part, src, dst)  # type: ignore[attr-defined]

    def fits(self, arrays: dict[str, npt.NDArray[Any]]) -> bool:
        own, parts = self._split(arrays)
        return self._fits_own(own) and all(
            d.fits(part) for d, part in zip(self.detectors, parts, strict=True))  # type: ignore[attr-defined]

    def _split(self, arrays: dict[str, npt.NDArray[Any]]) -> tuple[
            dict[str, npt.NDArray[Any]], list[dict[str, npt.NDArray[Any]]]]:
        """Own arrays, and each base detector's (``base<j>.`` prefix removed)."""
        own: dict[str, npt.NDArray[Any]] = {}
        parts: list[dict[str, npt.NDArray[Any]]] = [{} for _ in self.detectors]
        for name, array in arrays.items():
            head, _, rest = name.partition(".")
            j = head.removeprefix("base")
            if rest and head.startswith("base") and j.isdigit() and int(j) < len(parts):
                parts[int(j)][rest] = array
            else:
                own[name] = array
        return own, parts

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Float64Array, Float64Array]:
        """(final score, new recent averages ``(n, n_detectors)``), without changing state."""
        self._check(slots, ts_ms, values)
        raw = np.zeros((len(slots), len(self.detectors)))
        for j, d in enumerate(self.detectors):
            raw[:, j] = d.score(slots, ts_ms, values)
        count = self.count[slots]
        prev = self.recent.take(slots, axis=0)  # take: several times faster than [slots] on rows
        w = elapsed_weight(ts_ms - self.last_ts[slots], self._short_ms)[:, None]
        recent = np.where((count == 0)[:, None], raw, prev + w * (raw - prev))
        z = standardized(recent, self.mean.take(slots, axis=0), self.var.take(slots, axis=0),
                         self.min_std)
        for j, c in self.context:  # a reading its context finds usual is not j's news
            z[:, j] = np.where((raw[:, c] > 0.0) & (raw[:, c] < self.explained_below),
                               -np.inf, z[:, j])
        # the largest likelihood is that of the largest z (likelihood_score is monotone)
        final = likelihood_score(z.max(axis=1, initial=-np.inf), self.decades)
        if self.range_tolerance is not None:
            low, high = self.low[slots], self.high[slots]
            margin = self.range_tolerance * (high - low)
            novel = (values > high + margin) | (values < low - margin)
            final = np.where(novel, 1.0, final)
        final = np.where(count >= self.warmup, final, 0.0)
        final = np.where(ts_ms < self.quiet_until[slots], final * self.damp, final)
        return final, recent

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1]; 0 while the series is warming up.

        The evaluation is kept for an `update` that follows with the very same arrays (see
        `SlotDetector._gather_and_remember`), which then does not evaluate the base detectors
        again.
        """
        final, _ = self._gather_and_remember(slots, ts_ms, values)
        return final

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Learn readings; confirmed anomalies (own or in ``skip``) are kept out of baselines."""
        self.score_and_update(slots, ts_ms, values, skip)

    def score_and_update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> Float64Array:
        """Score a round of readings, then learn them; evaluates the base detectors once."""
        final, recent = self._recall_or_gather(slots, ts_ms, values)
        confirmed = (final >= self.confirm_at) | ~learn_mask(len(slots), skip)
        held = confirmed & (self.skipped[slots] < self.max_skip)
        for d in self.detectors:
            d.update(slots, ts_ms, values, held)
        self.recent[slots] = recent
        self.low[slots] = np.minimum(self.low[slots], values)
        self.high[slots] = np.maximum(self.high[slots], values)
        self.skipped[slots] = np.where(held, self.skipped[slots] + 1, 0)
        self.quiet_until[slots] = np.where(
            final >= self.confirm_at, ts_ms + round(self.refractory_s * 1000),
            self.quiet_until[slots])
        s = slots[~held]
        w = elapsed_weight(ts_ms[~held] - self.last_ts[s], self._long_ms)[:, None]
        self.mean[s], self.var[s] = ew_moments(
            self.mean.take(s, axis=0), self.var.take(s, axis=0), self.count[s][:, None],
            recent[~held], w)
        self.count[s] += 1
        self.last_ts[slots] = ts_ms
        return final
