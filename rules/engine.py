"""The vectorized rule engine: one pass per batch over every series, detections out on changes.

Order of work. A batch is sorted by (slot, ts, arrival) and cut into rounds in which each series
appears at most once (round r holds every series' r-th reading), so stateful operators and
detectors see each series in time order. A reading not newer than its series' last accepted
reading is dropped and counted (``late`` if older, ``duplicate`` if the same ts; within a batch
the first arrival of a ts wins). Per round: series state, then each detector scores the readings
(before learning), then every per-series rule matching them is judged at the reading's time, then
detectors learn (skipping readings an ``anomaly()`` rule is firing on). After the rounds,
``evaluate`` ticks at ``now_ms``: rules using ``stale`` are re-judged at ``now`` for every series
that has reported, pending ``for`` timers of the other per-series rules that have run out fire,
and count_in (area) rules are judged. Detections come out sorted by (ts, rule order, subject).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules import ast
from rules.area import AreaRule
from rules.compile import Context, Frame, compile_expr
from rules.detection import Detection
from rules.emit import Emitted, to_detections
from rules.errors import RuleError
from rules.model import Rule
from rules.plan import SlotTable, attribute_column, detector_names, matched_slots, ring_capacity
from rules.state import FIRING, NEVER, Ring, RuleState, SeriesState
from rules.transitions import NONE, promote, step

DetectorFactory = Callable[[], object]


@dataclass
class Stats:
    """Plain counters since the engine was built."""

    readings: int = 0
    late: int = 0
    duplicate: int = 0
    unknown_slot: int = 0
    detections: int = 0


@dataclass
class SeriesRule:
    """A per-series rule compiled against the slots it matches."""

    index: int
    rule: Rule
    slots: np.ndarray
    row_of: np.ndarray  # slot -> member row, -1 if not a member
    ring: Ring | None
    state: RuleState
    when: Callable[[Frame], np.ndarray]
    clear: Callable[[Frame], np.ndarray] | None
    severity: Callable[[Frame], np.ndarray]
    detectors: list[str] = field(default_factory=list)
    time_dependent: bool = False


class Engine:
    """Rules compiled against a registry snapshot, with their columnar state.

    Args:
        rules: The rule set (disabled rules are skipped).
        registry: Devices and series slots at build time.
        detectors: Detector name -> factory; defaults to `rules.detectors.DETECTORS`.
        attributes: Per-device numeric attributes for ``attr(name)``, by device id.
        utc_offset_h: Local time offset used by ``hour()`` (China Standard Time by default).

    Raises:
        RuleError: a rule uses an unknown detector or counts an unknown rule.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        registry: Registry,
        *,
        detectors: Mapping[str, DetectorFactory] | None = None,
        attributes: Mapping[str, Mapping[str, float]] | None = None,
        utc_offset_h: float = 8.0,
    ) -> None:
        self.rules = [r for r in rules if r.enabled]
        self.registry = registry
        self.table = SlotTable.of(registry)
        self.stats = Stats()
        n = len(self.table)
        names = detector_names(self.rules)
        self.detectors = _build_detectors(names, detectors, n)
        attrs = {a for r in self.rules for a in _attr_names(r)}
        self.ctx = Context(
            SeriesState(n),
            {name: np.zeros(n) for name in names},
            {a: attribute_column(a, self.table, attributes or {}) for a in attrs},
            round(utc_offset_h * 3_600_000),
        )
        self.series_rules = [
            self._compile(i, r) for i, r in enumerate(self.rules) if r.spatial_scope is None
        ]
        by_id = {sr.rule.id: sr for sr in self.series_rules}
        self.area_rules = [
            AreaRule.build(i, r, self.table, by_id, self.ctx)
            for i, r in enumerate(self.rules) if r.spatial_scope is not None
        ]
        self.domains = {
            name: np.isin(np.arange(n), np.concatenate(
                [sr.slots for sr in self.series_rules if name in sr.detectors]))
            for name in names
        }

    def _compile(self, index: int, rule: Rule) -> SeriesRule:
        slots = matched_slots(rule, self.table)
        row_of = np.full(len(self.table), -1, dtype=np.int32)
        row_of[slots] = np.arange(len(slots), dtype=np.int32)
        cap = ring_capacity(rule, self.table, slots)
        clear = compile_expr(rule.clear_ast, self.ctx) if rule.clear_ast is not None else None
        return SeriesRule(
            index, rule, slots, row_of, Ring(len(slots), cap) if cap else None,
            RuleState(len(slots)), compile_expr(rule.when_ast, self.ctx), clear,
            compile_expr(rule.severity_ast, self.ctx), detector_names([rule]),
            rule.time_dependent,
        )

    def evaluate(self, batch: ReadingBatch, now_ms: int) -> list[Detection]:
        """Judge a batch of readings, then tick at ``now_ms``; return the state changes."""
        out: list[Emitted] = []
        for slots, ts_ms, values in self._rounds(batch):
            self._round(slots, ts_ms, values, out)
        return self._finish(out, now_ms)

    def tick(self, now_ms: int) -> list[Detection]:
        """Raise what depends on time alone: staleness, run-out ``for`` timers, area counts."""
        return self._finish([], now_ms)

    def _finish(self, out: list[Emitted], now_ms: int) -> list[Detection]:
        self._tick(now_ms, out)
        detections = to_detections(out, self)
        self.stats.detections += len(detections)
        return detections

    def _rounds(self, batch: ReadingBatch) -> Iterator[tuple[np.ndarray, ...]]:
        n_slots = len(self.table)
        self.stats.readings += len(batch)
        known = (batch.slot >= 0) & (batch.slot < n_slots)
        self.stats.unknown_slot += int((~known).sum())
        b = batch.take(known) if not known.all() else batch
        order = np.lexsort((np.arange(len(b)), b.ts_ms, b.slot))
        slot, ts, value = b.slot[order], b.ts_ms[order], b.value[order]
        same = np.zeros(len(slot), dtype=bool)
        same[1:] = (slot[1:] == slot[:-1]) & (ts[1:] == ts[:-1])
        last = self.ctx.series.last_ts[slot]
        late = ts < last
        dup = same | (ts == last)
        self.stats.late += int(late.sum())
        self.stats.duplicate += int((dup & ~late).sum())
        keep = ~(late | dup)
        slot, ts, value = slot[keep], ts[keep], value[keep]
        if len(slot) == 0:
            return
        first = np.ones(len(slot), dtype=bool)
        first[1:] = slot[1:] != slot[:-1]
        idx = np.arange(len(slot))
        rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.cumsum(np.bincount(rank))
        for lo, hi in zip(np.r_[0, bounds[:-1]], bounds, strict=True):
            sel = by_rank[lo:hi]
            yield slot[sel], ts[sel], value[sel]

    def _round(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray,
               out: list[Emitted]) -> None:
        self.ctx.series.record(slots, ts_ms, values)
        learn = {}
        for name, detector in self.detectors.items():
            sel = np.flatnonzero(self.domains[name][slots])
            if len(sel):
                args = (slots[sel], ts_ms[sel], values[sel])
                self.ctx.scores[name][args[0]] = detector.score(*args)
                learn[name] = args
        for sr in self.series_rules:
            rows = sr.row_of[slots]
            sel = np.flatnonzero(rows >= 0)
            if len(sel) == 0:
                continue
            rows = rows[sel].astype(np.int64)
            t, v = ts_ms[sel], values[sel]
            if sr.ring is not None:
                sr.ring.push(rows, t, v)
            self._judge(sr, Frame(slots[sel], t, v, rows, sr.ring, t), rows, out)
        for name, args in learn.items():
            self.detectors[name].update(*args, self._confirmed(name, args[0]))

    def _confirmed(self, name: str, slots: np.ndarray) -> np.ndarray:
        skip = np.zeros(len(slots), dtype=bool)
        for sr in self.series_rules:
            if name in sr.detectors:
                rows = sr.row_of[slots]
                member = rows >= 0
                skip[member] |= sr.state.state[rows[member]] == FIRING
        return skip

    def _judge(self, sr: SeriesRule, frame: Frame, rows: np.ndarray, out: list[Emitted]) -> None:
        cond = sr.when(frame)
        clear = sr.clear(frame) if sr.clear is not None else ~cond
        change, severity = step(
            sr.state, rows, cond, clear, sr.severity(frame), frame.t_ms, sr.rule.for_ms
        )
        hit = change != NONE
        if hit.any():
            out.append(Emitted(frame.t_ms[hit], sr.index, frame.slots[hit], change[hit],
                               severity[hit], frame.value[hit]))

    def _tick(self, now_ms: int, out: list[Emitted]) -> None:
        series = self.ctx.series
        for sr in self.series_rules:
            if sr.time_dependent:
                rows = np.flatnonzero(series.last_ts[sr.slots] != NEVER)
                slots = sr.slots[rows]
                anchor = series.last_ts[slots]
                frame = Frame(slots, np.full(len(rows), now_ms, dtype=np.int64),
                              series.last_value[slots], rows, sr.ring, anchor)
                self._judge(sr, frame, rows, out)
            elif sr.rule.for_ms > 0:
                rows, severity = promote(sr.state, now_ms, sr.rule.for_ms)
                if len(rows):
                    slots = sr.slots[rows]
                    out.append(Emitted(np.full(len(rows), now_ms, dtype=np.int64), sr.index,
                                       slots, np.full(len(rows), FIRING, dtype=np.int8),
                                       severity, series.last_value[slots]))
        for ar in self.area_rules:
            ar.judge(now_ms, out)

    @property
    def nbytes(self) -> int:
        """Bytes held in state arrays (series, rings, rule states, scores, detectors)."""
        total = self.ctx.series.nbytes + sum(s.nbytes for s in self.ctx.scores.values())
        for sr in self.series_rules:
            total += sr.state.nbytes + sr.row_of.nbytes + (sr.ring.nbytes if sr.ring else 0)
        for detector in self.detectors.values():
            total += getattr(detector, "state_nbytes", lambda: 0)()
        return total + sum(ar.nbytes for ar in self.area_rules)


def _build_detectors(names: list[str], factories: Mapping[str, DetectorFactory] | None,
                     n_slots: int) -> dict[str, object]:
    if factories is None:
        from rules.detectors import DETECTORS

        factories = DETECTORS
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise RuleError(f"unknown detector(s) {unknown}; known: {sorted(factories)}")
    built = {name: factories[name]() for name in names}
    for detector in built.values():
        detector.grow(n_slots)  # type: ignore[attr-defined]
    return built


def _attr_names(rule: Rule) -> list[str]:
    return [n.name for n in rule.nodes() if isinstance(n, ast.Attr)]
