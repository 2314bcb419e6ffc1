"""The vectorized rule engine: one pass per batch over every series, detections out on changes.

Order of work. A batch is cut into rounds in which each series appears at most once, in time
order (see `rules.engine.rounds`, which also says what happens to late and duplicate readings). Per
round: series state, then each detector scores the readings (before learning), then every
per-series rule matching them is judged at the reading's time, then detectors learn (skipping
readings an ``anomaly()`` rule is firing on). After the rounds, ``evaluate`` ticks at
``now_ms``: rules using ``stale`` are re-judged at ``now`` for every series that has reported,
pending ``for`` timers of the other per-series rules that have run out fire, and count_in (area)
rules are judged. Detections come out sorted by (ts, rule order, subject).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import Detection
from rules.engine.area import AreaRule
from rules.engine.compile import Context, Frame
from rules.engine.emit import Emitted, to_detections
from rules.engine.groups import Routing
from rules.engine.plan import (
    SlotTable,
    attribute_column,
    detector_names,
    matched_slots,
    ring_capacity,
)
from rules.engine.rebuild import rebuild
from rules.engine.rounds import rounds
from rules.engine.series_rule import SeriesRule
from rules.engine.state import FIRING, NEVER, SeriesState
from rules.engine.transitions import promote
from rules.errors import RuleError
from rules.language import ast
from rules.language.model import Rule

if TYPE_CHECKING:  # rules.detectors is imported when an engine first needs it
    from rules.detectors.base import Detector

DetectorFactory = Callable[[], "Detector"]


class EngineOptions(TypedDict):
    """`Engine`'s keyword arguments, kept so that `rules.engine.rebuild` can build a successor."""

    detectors: Mapping[str, DetectorFactory] | None
    attributes: Mapping[str, Mapping[str, float]] | None
    utc_offset_h: float


@dataclass
class Stats:
    """Plain counters since the engine was built."""

    readings: int = 0
    late: int = 0
    duplicate: int = 0
    unknown_slot: int = 0
    detections: int = 0


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
        self.options: EngineOptions = {"detectors": detectors, "attributes": attributes,
                                       "utc_offset_h": utc_offset_h}
        self.table = SlotTable.of(registry)
        self.stats = Stats()
        self.reset_rules: tuple[str, ...] = ()  # rules whose state a rebuild dropped
        n = len(self.table)
        names = detector_names(self.rules)
        self.detectors = _build_detectors(names, detectors)
        attrs = {a for r in self.rules for a in _attr_names(r)}
        self.ctx = Context(
            SeriesState(n), {},
            {a: attribute_column(a, self.table, attributes or {}) for a in attrs},
            round(utc_offset_h * 3_600_000),
        )
        per_series = [(i, r) for i, r in enumerate(self.rules) if r.spatial_scope is None]
        self.routing, group_of = self._route([r for _, r in per_series])
        self.series_rules = [SeriesRule.build(i, r, self.routing.groups[g], self.table, self.ctx)
                             for (i, r), g in zip(per_series, group_of, strict=True)]
        for sr in self.series_rules:
            sr.group.rules.append(sr)
        by_id = {sr.rule.id: sr for sr in self.series_rules}
        self.area_rules = [
            AreaRule.build(i, r, self.table, by_id, self.ctx)
            for i, r in enumerate(self.rules) if r.spatial_scope is not None
        ]
        for name in names:
            self.place_detector(name, self.detectors[name], None, None)

    def detector_members(self, name: str) -> np.ndarray:
        """Slots judged by the rules that use detector ``name``."""
        return np.unique(np.concatenate(
            [sr.slots for sr in self.series_rules if name in sr.detectors]))

    def place_detector(self, name: str, detector: Detector, rows: np.ndarray | None,
                       scores: np.ndarray | None) -> None:
        """Install ``detector`` with rows for this engine's members of it, keeping ``rows``.

        Rows are append-only: the slots already in ``rows`` (a previous engine's map) keep
        theirs, so a detector's learned state stays valid when the engine is rebuilt.
        """
        row_of = np.full(len(self.table), -1, dtype=np.int32)
        if rows is not None:
            row_of[:len(rows)] = rows
        members = self.detector_members(name)
        new = members[row_of[members] < 0]
        n_old = int(row_of.max(initial=-1)) + 1
        row_of[new] = np.arange(n_old, n_old + len(new), dtype=np.int32)
        detector.grow(n_old + len(new))
        self.detectors[name] = detector
        self.ctx.detector_rows[name] = row_of
        self.ctx.scores[name] = np.zeros(n_old + len(new))
        if scores is not None:
            self.ctx.scores[name][:len(scores)] = scores

    def _route(self, rules: list[Rule]) -> tuple[Routing, list[int]]:
        members: dict[bytes, int] = {}
        slot_sets: list[np.ndarray] = []
        caps, group_of = [], []
        for rule in rules:
            slots = matched_slots(rule, self.table)
            g = members.setdefault(slots.tobytes(), len(members))
            if g == len(slot_sets):
                slot_sets.append(slots)
                caps.append(0)
            caps[g] = max(caps[g], ring_capacity(rule, self.table, slots))
            group_of.append(g)
        return Routing.build(len(self.table), slot_sets, caps), group_of

    def evaluate(self, batch: ReadingBatch, now_ms: int) -> list[Detection]:
        """Judge a batch of readings, then tick at ``now_ms``; return the state changes."""
        out: list[Emitted] = []
        for slots, ts_ms, values in rounds(batch, self.ctx.series.last_ts, self.stats):
            self._round(slots, ts_ms, values, out)
        return self._finish(out, now_ms)

    def tick(self, now_ms: int) -> list[Detection]:
        """Raise what depends on time alone: staleness, run-out ``for`` timers, area counts."""
        return self._finish([], now_ms)

    def rebuild(self, rules: Sequence[Rule] | None = None, registry: Registry | None = None,
                attributes: Mapping[str, Mapping[str, float]] | None = None,
                now_ms: int | None = None) -> Engine:
        """A new engine for a changed rule set and/or a grown registry, carrying state over.

        Pure: this engine is left unchanged. Rules whose id and definition are unchanged keep
        their state (pending ``for`` timers, firing flags); changed or removed rules start fresh
        and are listed in the new engine's ``reset_rules`` (see `rules.engine.rebuild`).

        Args:
            rules: The new rule set, or None to keep this one.
            registry: The grown registry (slots are append-only), or None to keep this one.
            attributes: Device attributes for ``attr()``, or None to keep these.
            now_ms: When the change happened: devices back in service count as heard then.

        Returns:
            The new engine, ready to take the next batch.
        """
        return rebuild(self, rules, registry, attributes, now_ms)

    def _finish(self, out: list[Emitted], now_ms: int) -> list[Detection]:
        self._tick(now_ms, out)
        detections = to_detections(out, self)
        self.stats.detections += len(detections)
        return detections

    def _round(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray,
               out: list[Emitted]) -> None:
        self.ctx.series.record(slots, ts_ms, values)
        learn, skip, round_scores = {}, {}, {}
        for name, detector in self.detectors.items():
            row = self.ctx.detector_rows[name][slots]
            sel = np.flatnonzero(row >= 0)
            if len(sel) == len(slots):  # every reading is a member (e.g. a city-wide rule)
                args = (row.astype(np.int64), ts_ms, values)
            elif len(sel):
                args = (row[sel].astype(np.int64), ts_ms[sel], values[sel])
            else:
                continue
            scores = detector.score(*args)
            self.ctx.scores[name][args[0]] = scores
            round_scores[name] = np.zeros(len(slots))
            round_scores[name][sel] = scores
            learn[name] = (sel, args)
            skip[name] = np.zeros(len(slots), dtype=bool)
        with np.errstate(all="ignore"):  # see `compile_expr`
            for group, sel, rows in self.routing.route(slots):
                if not group.rules:
                    continue
                t, v = ts_ms[sel], values[sel]
                if group.ring is not None:
                    group.ring.push(rows, t, v)
                frames: dict[int, Frame] = {}
                gathers: dict = {}
                for sr in group.rules:
                    frame = frames.get(sr.cap)
                    if frame is None:
                        frame = frames[sr.cap] = Frame(
                            slots[sel], t, v, rows, group.ring, t, cap=sr.cap, gathers=gathers,
                            round_scores=round_scores, sel=sel)
                    sr.judge(frame, rows, out)
                    for name in sr.detectors:
                        skip[name][sel] |= sr.state.state[rows] == FIRING
        for name, (sel, args) in learn.items():
            self.detectors[name].update(*args, skip[name][sel])

    def _tick(self, now_ms: int, out: list[Emitted]) -> None:
        with np.errstate(all="ignore"):  # see `compile_expr`
            self._tick_rules(now_ms, out)

    def _tick_rules(self, now_ms: int, out: list[Emitted]) -> None:
        series = self.ctx.series
        for group in self.routing.groups:
            timed = [sr for sr in group.rules if sr.time_dependent]
            if timed:
                rows = np.flatnonzero(series.last_ts[group.slots] != NEVER)
                slots = group.slots[rows]
                t = np.full(len(rows), now_ms, dtype=np.int64)
                anchor, value = series.last_ts[slots], series.last_value[slots]
                frames: dict[int, Frame] = {}
                gathers: dict = {}
                for sr in timed:
                    frame = frames.get(sr.cap)
                    if frame is None:
                        frame = frames[sr.cap] = Frame(slots, t, value, rows, group.ring, anchor,
                                                       cap=sr.cap, gathers=gathers)
                    sr.judge(frame, rows, out)
            for sr in group.rules:
                if sr.time_dependent or sr.rule.for_ms == 0:
                    continue
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
        """Bytes held in state arrays (series, routing, rings, rule states, scores, detectors)."""
        total = self.ctx.series.nbytes + sum(s.nbytes for s in self.ctx.scores.values())
        total += sum(rows.nbytes for rows in self.ctx.detector_rows.values())
        total += self.routing.nbytes + sum(sr.state.nbytes for sr in self.series_rules)
        for detector in self.detectors.values():
            total += getattr(detector, "state_nbytes", lambda: 0)()
        return total + sum(ar.nbytes for ar in self.area_rules)


def _build_detectors(names: list[str],
                     factories: Mapping[str, DetectorFactory] | None) -> dict[str, Detector]:
    if factories is None:
        from rules.detectors import DETECTORS

        factories = DETECTORS
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise RuleError(f"unknown detector(s) {unknown}; known: {sorted(factories)}")
    return {name: factories[name]() for name in names}


def _attr_names(rule: Rule) -> list[str]:
    return [n.name for n in rule.nodes() if isinstance(n, ast.Attr)]
