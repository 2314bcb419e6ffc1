"""Per-series rules: a rule compiled against its group's member series, judged frame by frame.

The per-series counterpart of `rules.engine.area`. `rules.engine.engine` builds them, and judges
each on the readings of every round and, if it depends on time, again at every tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rules.engine.compile import Context, Frame, compile_expr
from rules.engine.emit import Emitted
from rules.engine.plan import SlotTable, detector_names, ring_capacity
from rules.engine.state import FIRING, RuleState
from rules.engine.transitions import NONE, step
from rules.language.model import Rule


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
    detectors: list[str] = field(default_factory=list)
    time_dependent: bool = False

    @classmethod
    def build(cls, index: int, rule: Rule, slots: np.ndarray, table: SlotTable,
              ctx: Context) -> SeriesRule:
        """Compile ``rule``, the engine's ``index``-th, for its group's members ``slots``."""
        clear = compile_expr(rule.clear_ast, ctx) if rule.clear_ast is not None else None
        return cls(
            index, rule, slots, ring_capacity(rule, table, slots),
            RuleState(len(slots)), compile_expr(rule.when_ast, ctx), clear,
            compile_expr(rule.severity_ast, ctx), detector_names([rule]),
            rule.time_dependent,
        )

    def judge(self, frame: Frame, rows: np.ndarray, out: list[Emitted]) -> None:
        """Judge the members ``rows`` on ``frame`` and append their state changes to ``out``."""
        cond = self.when(frame)
        prior = self.state.state[rows]
        if not prior.any() and not cond.any():
            return  # inactive and staying so: nothing changes, clear and severity are moot
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
