"""Area rules: ``count_in(grid|district|neighbours, rule=X)`` judged per grid cell or district.

The count for an area is the number of member series of rule X, in that area (or, for
``neighbours``, in that grid cell and the 8 around it), on which X is firing. An area rule's own
``match`` narrows the series counted; its subjects are the areas that hold at least one of them.
It is judged at every tick, after the per-series rules.

The counts follow X's state changes (X tells its area rules which members started or stopped
firing), and a tick judges only the areas whose counts moved since it last judged them and the
pending ones whose ``for`` runs out: an area rule reads counts and numbers only, so nothing else
can change its result. After its rule state was written directly (restore, rebuild), `refile`
counts everything again and the next tick judges every area.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rules.engine.compile import Context, Fn, Frame, compile_expr
from rules.engine.deadlines import Deadlines
from rules.engine.emit import Emitted
from rules.engine.plan import SlotTable, area_of, matched_slots, neighbour_cells, subject_of
from rules.engine.state import FIRING, PENDING, RuleState
from rules.engine.transitions import NONE, step
from rules.errors import RuleError
from rules.language import ast
from rules.language.model import Rule

if TYPE_CHECKING:
    from rules.engine.series_rule import SeriesRule


@dataclass
class Source:
    """What one ``count_in`` term counts: the areas each member row of the counted rule falls
    in (``areas[start[row]:start[row + 1]]``) and the firing members per area."""

    key: tuple[str, str]
    rule: SeriesRule
    start: np.ndarray
    areas: np.ndarray
    count: np.ndarray

    def follow(self) -> np.ndarray:
        """Apply the counted rule's firing moves since the last tick; the areas they touch."""
        touched = []
        for rows, sign in self.rule.moves:
            lo, n = self.start[rows], self.start[rows + 1] - self.start[rows]
            owner = np.repeat(np.arange(len(rows)), n)
            areas = self.areas[lo[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(n) - n, n)]
            np.add.at(self.count, areas, sign[owner])
            touched.append(areas)
        return np.concatenate(touched) if touched else np.zeros(0, dtype=np.int64)

    def recount(self) -> None:
        firing = np.repeat(self.rule.state.state == FIRING, np.diff(self.start))
        self.count[:] = np.bincount(self.areas[firing], minlength=len(self.count))

    @property
    def nbytes(self) -> int:
        return self.start.nbytes + self.areas.nbytes + self.count.nbytes


@dataclass
class AreaRule:
    index: int
    rule: Rule
    areas: list[str]
    districts: list[str | None]
    sources: list[Source]
    state: RuleState
    when: Fn
    severity: Fn
    scope: str = "grid"
    deadlines: Deadlines = field(default_factory=Deadlines)  # pending areas by ``since + for``
    sweep: bool = True  # judge every area at the next tick

    @classmethod
    def build(cls, index: int, rule: Rule, table: SlotTable,
              by_id: dict[str, SeriesRule], ctx: Context) -> AreaRule:
        """Compile ``rule``; the rules it counts keep their firing moves for it."""
        scope = rule.spatial_scope or "grid"
        own = np.zeros(len(table), dtype=bool)
        own[matched_slots(rule, table)] = True
        keys = [(n.scope, n.rule_id) for n in ast.count_ins(rule.nodes())]
        missing = [rid for _, rid in keys if rid not in by_id]
        if missing:
            raise RuleError(f"rule {rule.id}: count_in() refers to unknown rule(s) {missing}")
        counted = {key: [(row, int(s)) for row, s in enumerate(by_id[key[1]].slots) if own[s]]
                   for key in keys}
        home = "district" if scope == "district" else "grid"
        district_of = {area_of(home, table, s): str(table.district[s])
                       for pairs in counted.values() for _, s in pairs}
        areas = sorted(district_of)
        index_of = {a: i for i, a in enumerate(areas)}
        sources = []
        for key, pairs in counted.items():
            reached: list[list[int]] = [[] for _ in by_id[key[1]].slots]
            for row, s in pairs:
                cell = area_of(home, table, s)
                reach = neighbour_cells(cell) if scope == "neighbours" else [cell]
                reached[row] = [index_of[a] for a in reach if a in index_of]
            sizes = np.array([len(r) for r in reached], dtype=np.int64)
            flat = [a for r in reached for a in r]
            sources.append(Source(key, by_id[key[1]], np.r_[0, np.cumsum(sizes)],
                                  np.array(flat, dtype=np.int64), np.zeros(len(areas))))
        for src in sources:
            src.rule.watched = True
        return cls(index, rule, areas, [district_of[a] for a in areas], sources,
                   RuleState(len(areas)), compile_expr(rule.when_ast, ctx),
                   compile_expr(rule.severity_ast, ctx), scope)

    def judge(self, now_ms: int, out: list[Emitted]) -> int:
        """Judge the areas whose result may have changed at ``now_ms``, append the changes to
        ``out``; how many areas were judged."""
        subjects = self._due(now_ms)
        if not len(subjects):
            return 0
        counts = {src.key: src.count[subjects] for src in self.sources}
        t = np.full(len(subjects), now_ms, dtype=np.int64)
        frame = Frame(subjects, t, counts[self.sources[0].key], counts=counts)
        cond = self.when(frame)
        if not cond.any() and not self.state.state[subjects].any():
            return len(subjects)  # inactive and staying so
        change, severity = step(self.state, subjects, cond, ~cond,
                                self.severity(frame), t, self.rule.for_ms)
        hit = change != NONE
        if hit.any():
            out.append(Emitted(t[hit], self.index, subjects[hit], change[hit], severity[hit],
                               frame.value[hit]))
            started = change == PENDING
            self.deadlines.push(subjects[started], t[started] + self.rule.for_ms)
        return len(subjects)

    def refile(self) -> None:
        """Count again from the counted rules' state, file the pending areas again, and judge
        every area at the next tick (after state was written directly)."""
        for src in self.sources:
            src.recount()
        self.deadlines.clear()
        pending = np.flatnonzero(self.state.state == PENDING)
        self.deadlines.push(pending, self.state.since_ms[pending] + self.rule.for_ms)
        self.sweep = True

    def describe(self, area: int) -> tuple[str, str | None, str | None]:
        """(subject, district, grid cell) of area index ``area``."""
        name = self.areas[area]
        if self.scope == "district":
            return subject_of("district", name), name, None
        return subject_of("grid", name), self.districts[area], name

    @property
    def nbytes(self) -> int:
        return self.state.nbytes + self.deadlines.nbytes + sum(s.nbytes for s in self.sources)

    def _due(self, now_ms: int) -> np.ndarray:
        """Areas due at ``now_ms``: counts moved or ``for`` run out (every area after refile)."""
        due = [self.deadlines.pop_due(now_ms), *(src.follow() for src in self.sources)]
        if self.sweep:
            self.sweep = False
            return np.arange(len(self.areas))
        return np.unique(np.concatenate(due))
