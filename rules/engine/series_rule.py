"""Per-series rules: a rule compiled against its group's member series, judged frame by frame.

The per-series counterpart of `rules.engine.area`. `rules.engine.engine` builds them, and judges
each on the readings of every round. Between readings only time moves, so a tick needs to look
only at the members whose result may change by then, and each rule keeps them in the order they
fall due (`rules.engine.deadlines`):

- a rule with a ``for`` timer (and no ``stale``/``out_of_range``) files each member that turns
  pending at ``since + for``, when a tick may promote it;
- a rule using ``stale`` or ``out_of_range`` (time-dependent: a tick judges it at ``now``) files
  each member, every time it is judged at ``t``, at the first moment after ``t`` when one of its
  time terms may flip: last heard + each ``stale`` duration, last fault + each ``out_of_range``
  hold, the next local hour boundary if it uses ``hour()``, ``since + for`` while pending.
  Nothing else a rule reads changes without a reading (which judges the member again) or a fault
  (which files it for the next tick), so a tick that skips a member not yet due skips a judgement
  that would have changed nothing. A member keeps one filed deadline, its earliest (``due_ms``);
  one that moved later is found early, judged (no change) and filed again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rules.engine.compile import Context, Frame, compile_expr
from rules.engine.deadlines import Deadlines
from rules.engine.emit import Emitted
from rules.engine.local_time import next_hour_change
from rules.engine.plan import SlotTable, detector_names, ring_capacity
from rules.engine.state import FIRING, PENDING, RuleState
from rules.engine.transitions import NONE, step
from rules.language import ast
from rules.language.model import Rule

NO_DEADLINE = np.iinfo(np.int64).max


@dataclass
class SeriesRule:
    """A per-series rule compiled against its group's members (``slots``, in row order)."""

    index: int
    rule: Rule
    slots: np.ndarray  # its group's members: rules matching the same series share them
    cap: int  # readings its windows may use (its group's ring may keep more)
    state: RuleState
    when: Callable[[Frame], np.ndarray]
    clear: Callable[[Frame], np.ndarray] | None
    severity: Callable[[Frame], np.ndarray]
    ctx: Context
    detectors: list[str] = field(default_factory=list)
    time_dependent: bool = False
    deadlines: Deadlines = field(default_factory=Deadlines)
    due_ms: np.ndarray | None = None  # time-dependent: each member's earliest filed deadline
    watched: bool = False  # counted by an area rule: keeps its firing moves until the tick
    moves: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (rows, +1 | -1)
    time_terms: tuple[tuple[int, ...], tuple[int, ...], bool] = ((), (), False)

    @classmethod
    def build(cls, index: int, rule: Rule, slots: np.ndarray, table: SlotTable,
              ctx: Context) -> SeriesRule:
        """Compile ``rule``, the engine's ``index``-th, for its group's members ``slots``."""
        clear = compile_expr(rule.clear_ast, ctx) if rule.clear_ast is not None else None
        timed = rule.time_dependent
        return cls(
            index, rule, slots, ring_capacity(rule, table, slots),
            RuleState(len(slots)), compile_expr(rule.when_ast, ctx), clear,
            compile_expr(rule.severity_ast, ctx), ctx, detector_names([rule]), timed,
            due_ms=np.full(len(slots), NO_DEADLINE, dtype=np.int64) if timed else None,
            time_terms=_time_terms(rule),
        )

    def judge(self, frame: Frame, rows: np.ndarray, out: list[Emitted],
              due_by_ms: int | None = None) -> None:
        """Judge the members ``rows`` on ``frame`` and append their state changes to ``out``.

        A time-dependent rule files the members judged after a time later than ``due_by_ms``
        (readings stamped after the batch's ``now``) at ``due_by_ms``, so that the tick that
        closes the batch judges them at ``now``, as it judges all others.
        """
        cond = self.when(frame)
        prior = self.state.state[rows]
        if not prior.any() and not cond.any():
            if self.time_dependent:  # inactive and staying so: only the deadlines move
                self._file(frame, rows, due_by_ms)
            return
        if self.clear is None:
            clear = ~cond
        elif (prior == FIRING).any():
            clear = self.clear(frame)
        else:
            clear = cond  # only read for firing subjects; none here
        change, severity = step(
            self.state, rows, cond, clear, self.severity(frame), frame.t_ms, self.rule.for_ms
        )
        hit = change != NONE
        if hit.any():
            out.append(Emitted(frame.t_ms[hit], self.index, frame.slots[hit], change[hit],
                               severity[hit], frame.value[hit]))
            self._keep_moves(rows[hit], prior[hit])
        if self.time_dependent:
            self._file(frame, rows, due_by_ms)
        elif self.rule.for_ms and hit.any():
            started = np.flatnonzero(change == PENDING)
            self.deadlines.push(rows[started], frame.t_ms[started] + self.rule.for_ms)

    def promote(self, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """At a tick: the pending members whose ``for`` has run out fire (a rule that is not
        time-dependent). Returns (rows, severity)."""
        rows = np.unique(self.deadlines.pop_due(now_ms))
        rs = self.state
        rows = rows[(rs.state[rows] == PENDING) & (now_ms - rs.since_ms[rows] >= self.rule.for_ms)]
        rs.state[rows] = FIRING
        self._keep_moves(rows, np.full(len(rows), PENDING, dtype=np.int8))
        return rows, rs.severity[rows]

    def take_due(self, now_ms: int) -> np.ndarray:
        """Members of a time-dependent rule due for judging at ``now_ms`` (sorted, unique)."""
        assert self.due_ms is not None
        rows = np.unique(self.deadlines.pop_due(now_ms))
        self.due_ms[rows] = NO_DEADLINE
        return rows

    def file_at(self, rows: np.ndarray, due_ms: int) -> None:
        """Have a tick at or after ``due_ms`` judge ``rows`` (time-dependent rules)."""
        assert self.due_ms is not None
        self._file_earlier(rows, np.full(len(rows), due_ms, dtype=np.int64))

    def refile(self) -> None:
        """Forget every deadline and file them again from the rule state (after it was written
        directly: restore, rebuild). A time-dependent rule is then judged whole at the next
        tick (the engine sweeps), which files its members again."""
        self.deadlines.clear()
        if self.due_ms is not None:
            self.due_ms[:] = NO_DEADLINE
        elif self.rule.for_ms:
            pending = np.flatnonzero(self.state.state == PENDING)
            self.deadlines.push(pending, self.state.since_ms[pending] + self.rule.for_ms)

    @property
    def nbytes(self) -> int:
        due = self.due_ms.nbytes if self.due_ms is not None else 0
        return self.state.nbytes + due + self.deadlines.nbytes

    def _keep_moves(self, rows: np.ndarray, prior: np.ndarray) -> None:
        """Keep the members that started or stopped firing for the area rules counting them."""
        if not self.watched or len(rows) == 0:
            return
        was, now = prior == FIRING, self.state.state[rows] == FIRING
        moved = was != now
        if moved.any():
            self.moves.append((rows[moved], np.where(now[moved], 1.0, -1.0)))

    def _file(self, frame: Frame, rows: np.ndarray, due_by_ms: int | None) -> None:
        """File each judged member at the first moment after its judgement its result may flip."""
        t = frame.t_ms
        nxt = np.full(len(rows), NO_DEADLINE, dtype=np.int64)
        series, slots = self.ctx.series, frame.slots

        def sooner(at: np.ndarray) -> None:
            np.copyto(nxt, np.minimum(nxt, at), where=at > t)

        stale, holds, hourly = self.time_terms
        if stale:
            heard = series.heard_ts(slots, series.last_ts[slots], t)
            for d in stale:
                sooner(heard + d)
        for hold in holds:
            sooner(series.fault_ts[slots] + hold)
        if hourly:
            sooner(next_hour_change(t))
        if self.rule.for_ms:
            pending = self.state.state[rows] == PENDING
            sooner(np.where(pending, self.state.since_ms[rows] + self.rule.for_ms, NO_DEADLINE))
        if due_by_ms is not None:
            nxt[t > due_by_ms] = due_by_ms
        self._file_earlier(rows, nxt)

    def _file_earlier(self, rows: np.ndarray, due: np.ndarray) -> None:
        assert self.due_ms is not None
        earlier = due < self.due_ms[rows]
        if earlier.any():
            rows, due = rows[earlier], due[earlier]
            self.due_ms[rows] = due
            self.deadlines.push(rows, due)


def _time_terms(rule: Rule) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """(``stale`` durations, ``out_of_range`` holds, whether it reads ``hour()``) of a rule."""
    nodes = rule.nodes()
    stale = tuple(sorted({n.duration_ms for n in nodes if isinstance(n, ast.Stale)}))
    holds = tuple(sorted({n.hold_ms for n in nodes if isinstance(n, ast.OutOfRange)}))
    return stale, holds, any(isinstance(n, ast.Hour) for n in nodes)
