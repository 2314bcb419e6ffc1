"""The contract every vectorized anomaly detector keeps, and the slot-array plumbing they share.

A detector follows River's shape across all series at once: ``score`` judges readings against
what the detector has learned so far (score before learning), then ``update`` learns them. State
lives in arrays indexed by series slot; hyperparameters are exactly the constructor arguments.
Within one call each slot appears at most once: the engine splits a batch into rounds so that
stateful detectors see every series' readings in time order.

Scores are in [0, 1]; 0 also means "still warming up" (not enough history to speak).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StateSpec = dict[str, tuple[Any, float, tuple[int, ...]]]  # name -> (dtype, fill, row shape)


@runtime_checkable
class Detector(Protocol):
    """A vectorized streaming anomaly detector over ``n_slots`` series."""

    n_slots: int

    def grow(self, n_slots: int) -> None:
        """Make room for slots ``0 .. n_slots - 1`` (new slots start empty)."""

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1] against the state learned so far; changes nothing."""

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Learn the readings, except those marked in ``skip`` (confirmed anomalies)."""


def score_and_update(
    detector: Detector,
    slots: Int64Array,
    ts_ms: Int64Array,
    values: Float64Array,
    skip: BoolArray | None = None,
) -> Float64Array:
    """Score one round of readings, then learn them.

    Args:
        detector: Any detector.
        slots: Series slot per reading; each slot at most once.
        ts_ms: Reading time (epoch ms).
        values: Reading values.
        skip: Readings the caller already judged anomalous; they are scored but not learned.

    Returns:
        The scores, computed before learning.
    """
    fused = getattr(detector, "score_and_update", None)
    if fused is not None:  # detectors that can do both in one pass
        return fused(slots, ts_ms, values, skip)
    scores = detector.score(slots, ts_ms, values)
    detector.update(slots, ts_ms, values, skip)
    return scores


class SlotDetector:
    """Base for detectors whose state is a set of arrays with one leading row per slot.

    Subclasses list their state in ``_state`` as ``name -> (dtype, fill, trailing shape)``;
    ``grow`` extends every array with rows of the fill value, and pickling is plain attribute
    pickling. Those whose ``update`` needs what ``score`` read define ``_gather_state``, and
    ``score`` and ``update`` get it through ``_gather_and_remember`` and ``_recall_or_gather``.
    """

    _state: ClassVar[StateSpec] = {}

    def __init__(self) -> None:
        self.n_slots = 0
        self._scored: tuple[Any, ...] | None = None  # see `_gather_and_remember`
        for name, (dtype, fill, tail) in self._state_spec().items():
            setattr(self, name, np.full((0, *tail), fill, dtype=dtype))

    def _state_spec(self) -> StateSpec:
        return self._state

    if TYPE_CHECKING:  # state arrays are set from the spec; tell type checkers they exist

        def __getattr__(self, name: str) -> npt.NDArray[Any]: ...

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_scored"}  # a cache, not state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _scored=None)

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Any, ...]:
        """What ``score`` works out from state for these readings that ``update`` needs again."""
        raise NotImplementedError(f"{type(self).__name__} gathers no state")

    def _gather_and_remember(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Any, ...]:
        """Gather for ``score``, and keep it for an ``update`` that follows with the same arrays.

        The engine scores a round, judges the rules, then learns the same round: the state read
        for scoring is still current then (any update or grow in between forgets it). Arrays
        are matched by identity, so they must not be changed in place between the two calls.
        """
        gathered = self._gather_state(slots, ts_ms, values)
        self._scored = (slots, ts_ms, values, gathered)
        return gathered

    def _recall_or_gather(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Any, ...]:
        """Gather for ``update``: what the last ``score`` of these very arrays kept, else afresh."""
        scored, self._scored = self._scored, None
        if scored is not None and scored[0] is slots and scored[1] is ts_ms \
                and scored[2] is values:
            return scored[3]
        return self._gather_state(slots, ts_ms, values)

    def grow(self, n_slots: int) -> None:
        """Make room for slots ``0 .. n_slots - 1``; never shrinks."""
        self._scored = None
        if n_slots <= self.n_slots:
            return
        extra = n_slots - self.n_slots
        for name, (dtype, fill, tail) in self._state_spec().items():
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full((extra, *tail), fill, dtype=dtype)]))
        self.n_slots = n_slots

    def state_nbytes(self) -> int:
        """Bytes held in state arrays (for the memory-per-series benchmark)."""
        return sum(getattr(self, name).nbytes for name in self._state_spec())

    def state_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The learned state by name, one leading row per slot (what a checkpoint saves)."""
        return self._own_arrays()

    def _own_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name in self._state_spec()}

    def copy_rows(self, arrays: dict[str, npt.NDArray[Any]], src: Int64Array,
                  dst: Int64Array) -> None:
        """Set rows ``dst`` of the state to rows ``src`` of ``arrays`` (as `state_arrays` gave).

        Raises:
            ValueError: ``arrays`` does not hold exactly this detector's arrays, each with the
                same dtype and trailing shape (then nothing is changed).
        """
        if not self.fits(arrays):
            raise ValueError(f"{type(self).__name__}: state arrays do not match")
        self._copy_own(arrays, src, dst)

    def _copy_own(self, arrays: dict[str, npt.NDArray[Any]], src: Int64Array,
                  dst: Int64Array) -> None:
        self._scored = None
        for name, array in self._own_arrays().items():
            array[dst] = arrays[name][src]

    def fits(self, arrays: dict[str, npt.NDArray[Any]]) -> bool:
        """Whether ``arrays`` are this detector's state arrays (names, dtypes, row shapes)."""
        return self._fits_own(arrays)

    def _fits_own(self, arrays: dict[str, npt.NDArray[Any]]) -> bool:
        own = self._own_arrays()
        return set(arrays) == set(own) and all(
            a.dtype == own[n].dtype and a.shape[1:] == own[n].shape[1:]
            for n, a in arrays.items())

    def _check(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> None:
        if not len(slots) == len(ts_ms) == len(values):
            raise ValueError("slots, ts_ms and values must have the same length")
        if len(slots) and (slots.min() < 0 or slots.max() >= self.n_slots):
            raise ValueError(f"slot out of range 0..{self.n_slots - 1}; call grow() first")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def params(self) -> dict[str, Any]:
        """The hyperparameters: the constructor's arguments, kept as attributes of those names."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}


def learn_mask(n: int, skip: BoolArray | None) -> BoolArray:
    """Readings to learn from: all, minus those marked in ``skip``."""
    if skip is None:
        return np.ones(n, dtype=bool)
    if len(skip) != n:
        raise ValueError("skip must have one flag per reading")
    return ~np.asarray(skip, dtype=bool)


def check_tau(tau_s: float) -> float:
    """``tau_s`` in milliseconds if it is a valid time constant (> 0); ValueError otherwise."""
    if not tau_s > 0.0:
        raise ValueError(f"tau_s must be > 0, got {tau_s}")
    return tau_s * 1000.0


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is a valid EW weight (0 < alpha <= 1); ValueError otherwise."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    return alpha


def ew_moments(
    mean: Float64Array, var: Float64Array, n: Int64Array, x: Float64Array,
    alpha: float | Float64Array,
) -> tuple[Float64Array, Float64Array]:
    """EW mean and variance after learning ``x``, given ``n`` readings learned so far.

    The weight is ``max(alpha, 1 / (n + 1))`` (``alpha`` may be one weight per reading, see
    `elapsed_weight`): a plain running mean and variance until ``1 / alpha`` readings are
    learned, so early estimates are not biased towards zero.
    """
    a = np.maximum(alpha, 1.0 / (n + 1))
    d = x - mean
    return mean + a * d, (1.0 - a) * (var + a * d * d)


def elapsed_weight(dt_ms: Int64Array, tau_ms: float) -> Float64Array:
    """EW weight of a reading ``dt_ms`` after its series' previous one: ``dt / (dt + tau)``.

    Time constants follow elapsed time, not readings, so that a series reporting every minute
    and one reporting every hour forget at the same pace. A gap is counted as at most ``tau``
    (weight at most 0.5): after an outage the baseline is not replaced by one reading. Plain
    arithmetic keeps vectorized and scalar results identical.
    """
    dt = np.clip(dt_ms, 0, tau_ms).astype(np.float64)
    return dt / (dt + tau_ms)


def standardized(
    x: Float64Array, mean: Float64Array, var: Float64Array, min_std: float
) -> Float64Array:
    """``(x - mean) / (std + min_std)``: the floor keeps a flat series from dividing by zero."""
    return (x - mean) / (np.sqrt(var) + min_std)


def squash(z: Float64Array, z_scale: float) -> Float64Array:
    """Map a non-negative deviation ``z`` to [0, 1): ``z / (z + z_scale)``; 0.5 at ``z_scale``.

    Plain arithmetic (no transcendental functions) keeps vectorized and scalar results identical.
    """
    return z / (z + z_scale)
