"""Area rules: ``count_in(grid|district|neighbours, rule=X)`` judged per grid cell or district.

The count for an area is the number of member series of rule X, in that area (or, for
``neighbours``, in that grid cell and the 8 around it), on which X is firing. An area rule's own
``match`` narrows the series counted; its subjects are the areas that hold at least one of them.
It is judged at every tick, after the per-series rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rules.engine.compile import Context, Fn, Frame, compile_expr
from rules.engine.emit import Emitted
from rules.engine.plan import SlotTable, area_of, matched_slots, neighbour_cells, subject_of
from rules.engine.state import FIRING, RuleState
from rules.engine.transitions import NONE, step
from rules.errors import RuleError
from rules.language import ast
from rules.language.model import Rule

if TYPE_CHECKING:
    from rules.engine.series_rule import SeriesRule


@dataclass
class Source:
    """The (area, member row) pairs over which one ``count_in`` term counts firing members."""

    key: tuple[str, str]
    rule: SeriesRule
    pair_area: np.ndarray
    pair_row: np.ndarray


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

    @classmethod
    def build(cls, index: int, rule: Rule, table: SlotTable,
              by_id: dict[str, SeriesRule], ctx: Context) -> AreaRule:
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
            area_idx, rows = [], []
            for row, s in pairs:
                cell = area_of(home, table, s)
                reach = neighbour_cells(cell) if scope == "neighbours" else [cell]
                for a in reach:
                    if a in index_of:
                        area_idx.append(index_of[a])
                        rows.append(row)
            sources.append(Source(key, by_id[key[1]], np.array(area_idx, dtype=np.int64),
                                  np.array(rows, dtype=np.int64)))
        return cls(index, rule, areas, [district_of[a] for a in areas], sources,
                   RuleState(len(areas)), compile_expr(rule.when_ast, ctx),
                   compile_expr(rule.severity_ast, ctx), scope)

    def counts(self) -> dict[tuple[str, str], np.ndarray]:
        out = {}
        for src in self.sources:
            firing = src.rule.state.state[src.pair_row] == FIRING
            out[src.key] = np.bincount(src.pair_area[firing], minlength=len(self.areas)).astype(
                np.float64)
        return out

    def judge(self, now_ms: int, out: list[Emitted]) -> None:
        """Evaluate every area at ``now_ms`` and append the changes to ``out``."""
        if not self.areas:
            return
        counts = self.counts()
        subjects = np.arange(len(self.areas))
        t = np.full(len(subjects), now_ms, dtype=np.int64)
        frame = Frame(subjects, t, counts[self.sources[0].key], counts=counts)
        cond = self.when(frame)
        if not cond.any() and not self.state.state.any():
            return  # inactive and staying so
        change, severity = step(self.state, subjects, cond, ~cond,
                                self.severity(frame), t, self.rule.for_ms)
        hit = change != NONE
        if hit.any():
            out.append(Emitted(t[hit], self.index, subjects[hit], change[hit], severity[hit],
                               frame.value[hit]))

    def describe(self, area: int) -> tuple[str, str | None, str | None]:
        """(subject, district, grid cell) of area index ``area``."""
        name = self.areas[area]
        if self.scope == "district":
            return subject_of("district", name), name, None
        return subject_of("grid", name), self.districts[area], name

    @property
    def nbytes(self) -> int:
        return self.state.nbytes + sum(s.pair_area.nbytes + s.pair_row.nbytes
                                       for s in self.sources)
