"""Compile an expression tree once into a function of numpy arrays over many subjects.

A compiled expression takes a `Frame` (the subjects evaluated together, their evaluation time,
value and window rows) and returns one result per subject. Sums run strictly in order (newest
reading first) so that results equal the scalar reference bit for bit.
Equal subexpressions (e.g. ``mean(1h)`` in ``when``, ``clear_when`` and ``severity``) are
computed once per frame: expressions are pure, so each node's result is memoized in the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from rules.engine.local_time import local_hour
from rules.engine.state import Ring, SeriesState
from rules.language import ast

Fn = Callable[["Frame"], np.ndarray]
_Part = Callable[["Frame"], "np.ndarray | np.generic"]  # a constant stays a numpy scalar
_OPS = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal, "and": np.logical_and, "or": np.logical_or,
}
_FEW_ROWS = 128  # up to this many rows, `_sum` accumulates


@dataclass
class Context:
    """Engine-wide inputs of expressions: series state, detector scores, attributes, time zone.

    A detector keeps state only for the series its rules judge: ``detector_rows[name]`` maps a
    slot to its row in that detector (and in ``scores[name]``), -1 for other slots.
    """

    series: SeriesState
    scores: dict[str, np.ndarray]
    attributes: dict[str, np.ndarray]
    zone: ZoneInfo  # the city's, for hour()
    detector_rows: dict[str, np.ndarray] = field(default_factory=dict)
    node_ids: dict[ast.Node, int] = field(default_factory=dict)  # equal nodes share a memo slot


@dataclass
class Frame:
    """Subjects evaluated together: slots (or areas), evaluation times and values.

    ``cap`` is the evaluating rule's own ring capacity (its ring may be shared with rules that
    keep more); ``gathers`` may be shared by the frames of one group of rules in one round.
    """

    slots: np.ndarray
    t_ms: np.ndarray
    value: np.ndarray
    rows: np.ndarray | None = None
    ring: Ring | None = None
    anchor_ms: np.ndarray | None = None  # time of each series' newest reading
    counts: Mapping[tuple[str, str], np.ndarray] = field(default_factory=dict)
    cap: int = 0
    gathers: dict[tuple[int, int], tuple[np.ndarray, ...]] = field(default_factory=dict)
    memo: dict[int, np.ndarray | np.generic] = field(default_factory=dict)
    # in a round: each detector's scores of the round's readings, and which of them are subjects
    round_scores: Mapping[str, np.ndarray] | None = None
    sel: np.ndarray | None = None

    def window(self, window_ms: int) -> tuple[np.ndarray, ...]:
        """(ts, value, inside, n) of readings with ts in (anchor - window, anchor], newest first."""
        key = (window_ms, self.cap)
        if key not in self.gathers:
            assert self.ring is not None and self.rows is not None and self.anchor_ms is not None
            base = self.gathers.get((-1, self.cap))
            if base is None:
                base = self.gathers[(-1, self.cap)] = self.ring.newest_first(self.rows, self.cap)
            ts, value, held = base
            inside = held & (ts > (self.anchor_ms - window_ms)[:, None])
            self.gathers[key] = (ts, value, inside, inside.sum(axis=1))
        return self.gathers[key]


def compile_expr(node: ast.Node, ctx: Context) -> Fn:
    """Compile ``node`` into a function returning one value per subject of a frame.

    Call it within ``np.errstate(all="ignore")``: as in the reference, a division by zero gives
    inf or nan, which then compares false, rather than a warning.
    """
    fn = _memo(node, ctx)

    def run(frame: Frame) -> np.ndarray:
        out = fn(frame)
        shape = frame.slots.shape
        if isinstance(out, np.ndarray) and out.shape == shape:
            return out
        return np.broadcast_to(out, shape)

    return run


def _memo(node: ast.Node, ctx: Context) -> _Part:
    fn = _compile(node, ctx)
    if isinstance(node, ast.Num | ast.Sev | ast.Value | ast.CountIn):
        return fn
    key = ctx.node_ids.setdefault(node, len(ctx.node_ids))

    def cached(f: Frame) -> np.ndarray | np.generic:
        found = f.memo.get(key)
        if found is None:
            found = f.memo[key] = fn(f)
        return found

    return cached


def _compile(node: ast.Node, ctx: Context) -> _Part:
    match node:
        case ast.Num(value) | ast.Sev(value):
            constant = np.float64(value) if isinstance(node, ast.Num) else np.int8(value)
            return lambda f: constant
        case ast.Value():
            return lambda f: f.value
        case ast.Hour():
            return lambda f: local_hour(f.t_ms, ctx.zone)
        case ast.Attr(name, default):
            return _attr(ctx, name, default)
        case ast.Anomaly(name):
            return lambda f: _score(f, ctx, name)
        case ast.Stale(duration_ms):
            return lambda f: (f.t_ms - ctx.series.heard_ts(f.slots, _last_ts(f, ctx), f.t_ms)
                              >= duration_ms)
        case ast.OutOfRange(hold_ms):
            return lambda f: _out_of_range(f, ctx, hold_ms)
        case ast.Stuck(window_ms):
            return lambda f: f.anchor_ms - ctx.series.run_start_ts[f.slots] >= window_ms
        case ast.CountIn(scope, rule_id):
            return lambda f: f.counts[(scope, rule_id)]
        case ast.Window(fn, window_ms):
            return _window(fn, window_ms)
        case ast.Unary("-", operand):
            inner = _memo(operand, ctx)
            return lambda f: np.negative(inner(f))
        case ast.Unary(_, operand):
            inner = _memo(operand, ctx)
            return lambda f: np.logical_not(inner(f))
        case ast.Binary(op, left, right):
            lhs, rhs, ufunc = _memo(left, ctx), _memo(right, ctx), _OPS[op]
            return lambda f: ufunc(lhs(f), rhs(f))
        case ast.IfElse(cond, then, other):
            c, a, b = _memo(cond, ctx), _memo(then, ctx), _memo(other, ctx)
            return lambda f: np.where(c(f), a(f), b(f))
    raise TypeError(f"cannot compile {node!r}")


def _score(f: Frame, ctx: Context, name: str) -> np.ndarray:
    """Each subject's latest ``name`` score: the round's own when the frame has them."""
    if f.round_scores is not None:
        return f.round_scores[name][f.sel]
    return ctx.scores[name][ctx.detector_rows[name][f.slots]]


def _last_ts(f: Frame, ctx: Context) -> np.ndarray:
    """Each subject's last reading time: the frame's anchor when it has one (they are equal)."""
    return f.anchor_ms if f.anchor_ms is not None else ctx.series.last_ts[f.slots]


def _attr(ctx: Context, name: str, default: float | None) -> Fn:
    if default is None:
        return lambda f: ctx.attributes[name][f.slots]

    def or_default(f: Frame) -> np.ndarray:
        column = ctx.attributes[name][f.slots]
        return np.where(np.isnan(column), default, column)

    return or_default


def _out_of_range(f: Frame, ctx: Context, hold_ms: int) -> np.ndarray:
    """Last fault newer than the last reading, or within the hold (NEVER compares below all)."""
    fault = ctx.series.fault_ts[f.slots]
    return (fault > _last_ts(f, ctx)) | (fault > f.t_ms - hold_ms)


def _window(fn: str, window_ms: int) -> Fn:
    if fn == "rate":
        return lambda f: _rate(f.window(window_ms), window_ms)
    return lambda f: WINDOW_OPS[fn](*f.window(window_ms))


def _sum(value: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Row sums added strictly left to right, one column at a time (as the reference adds).

    Column by column rather than ``np.add.accumulate(axis=1)``: the same additions in the same
    order, several times faster on the short rows windows have. But for a few rows (a small
    round's share of a group) one accumulate beats a Python step per column of a long window.
    """
    masked = np.where(inside, value, 0.0)
    if masked.shape[0] <= _FEW_ROWS:
        return np.add.accumulate(masked, axis=1)[:, -1].copy()
    total = masked[:, 0].copy()
    for k in range(1, masked.shape[1]):
        total += masked[:, k]
    return total


def _oldest(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    return a[np.arange(len(a)), n - 1]


def _mean(ts: np.ndarray, value: np.ndarray, inside: np.ndarray, n: np.ndarray) -> np.ndarray:
    return _sum(value, inside) / n


def _delta(ts: np.ndarray, value: np.ndarray, inside: np.ndarray, n: np.ndarray) -> np.ndarray:
    return value[:, 0] - _oldest(value, n)


def _rate(window: tuple[np.ndarray, ...], window_ms: int) -> np.ndarray:
    """Least-squares slope per second; NaN where the window is not covered (`ast.Window`).

    Times are seconds before the newest reading, so that epoch milliseconds never get squared.
    """
    ts, value, inside, n = window
    t_s = (ts - ts[:, :1]) / 1000.0
    dt = t_s - (_sum(t_s, inside) / n)[:, None]
    dv = value - (_sum(value, inside) / n)[:, None]
    slope = _sum(dt * dv, inside) / _sum(dt * dt, inside)
    span_ms = ts[:, 0] - _oldest(ts, n)
    covered = (n >= ast.RATE_MIN_READINGS) & (span_ms >= ast.RATE_MIN_SPAN * window_ms)
    return np.where(covered, slope, np.nan)


def _zscore(ts: np.ndarray, value: np.ndarray, inside: np.ndarray, n: np.ndarray) -> np.ndarray:
    mean = _sum(value, inside) / n
    dev = value - mean[:, None]
    std = np.sqrt(_sum(dev * dev, inside) / n)
    return np.where(std > 0, (value[:, 0] - mean) / np.where(std > 0, std, 1.0), 0.0)


def _extreme(pick: Callable, fill: float) -> Callable:
    return lambda ts, value, inside, n: pick(np.where(inside, value, fill), axis=1)


WINDOW_OPS: dict[str, Callable[..., np.ndarray]] = {
    "mean": _mean, "delta": _delta, "zscore": _zscore,
    "min": _extreme(np.min, np.inf), "max": _extreme(np.max, -np.inf),
}
