"""The vectorized rule engine: one pass per batch over every series, detections out on changes.

Order of work. A batch is cut into rounds in which each series appears at most once, in time
order (see `rules.engine.rounds`, which also says what happens to late and duplicate readings). Per
round: series state, then each detector scores the readings (before learning), then every
per-series rule matching them is judged at the reading's time, then detectors learn (skipping
readings an ``anomaly()`` rule is firing on). After the rounds, ``evaluate`` ticks at
``now_ms``: rules using ``stale`` are re-judged at ``now`` for every series that has reported,
pending ``for`` timers of the other per-series rules that have run out fire, and count_in (area)
rules are judged. Detections come out sorted by (ts, rule order, subject).

Cost. A tick does only what falls due: each rule keeps its members in the order their result may
next change (`rules.engine.series_rule`), area rules keep counts that follow state changes and
judge only the areas whose counts moved (`rules.engine.area`), so a tick with nothing due costs
the same for ten series as for a million. Skipped judgements are exactly those that would have
changed nothing, provided time does not run backwards: a tick earlier than the latest one judges
every series that has reported, as does the first tick after state was written directly
(`Engine.refile`: build, restore, rebuild).

Sensor faults. Ingest refuses a reading outside its metric's catalogue range (it is not a
measurement: it is neither stored nor seen by windows or detectors), but hands it to ``evaluate``
as a fault, so the engine stays pure and learns of broken sensors as data. A fault counts as
the series being heard from (``stale`` stays false: broken, not offline); rules using
``out_of_range`` are judged on each series' newest fault of the batch, with ``value`` the
faulty value, and like ``stale`` again at every tick, which clears them once the sensor is
back in range and the hold has passed.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict
from zoneinfo import ZoneInfo

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import Detection
from rules.engine.area import AreaRule
from rules.engine.compile import Context, Frame
from rules.engine.emit import Emitted, to_detections
from rules.engine.groups import Group, Routing
from rules.engine.plan import SlotTable, attribute_column, detector_names
from rules.engine.rebuild import (
    carry_area_states,
    carry_rings,
    carry_rule_states,
    carry_series,
    left_service,
    relocated,
    restart_returned,
)
from rules.engine.restore import RestoreReport, restore
from rules.engine.rounds import Stats, rounds
from rules.engine.scoring import (
    CITY_TIMEZONE,
    DetectorFactory,
    RoundScores,
    build_detectors,
    place,
)
from rules.engine.series_rule import SeriesRule
from rules.engine.snapshot import Snapshot, take
from rules.engine.state import FIRING, NEVER, SeriesState
from rules.language import ast
from rules.language.model import Rule

if TYPE_CHECKING:
    from rules.detectors.base import Detector


class EngineOptions(TypedDict):
    """`Engine`'s keyword arguments, kept so that `Engine.rebuild` can build a successor."""

    detectors: Mapping[str, DetectorFactory] | None
    attributes: Mapping[str, Mapping[str, float]] | None
    timezone: str


class Engine:
    """Rules compiled against a registry snapshot, with their columnar state.

    Args:
        rules: The rule set (disabled rules are skipped).
        registry: Devices and series slots at build time.
        detectors: Detector name -> factory; defaults to `rules.detectors.DETECTORS`.
        attributes: Per-device numeric attributes for ``attr(name)``, by device id.
        timezone: The city's IANA time zone, for ``hour()`` (China Standard Time by default).

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
        timezone: str = CITY_TIMEZONE,
    ) -> None:
        self.rules = [r for r in rules if r.enabled]
        self.registry = registry
        self.options: EngineOptions = {"detectors": detectors, "attributes": attributes,
                                       "timezone": timezone}
        self.table = SlotTable.of(registry)
        self.stats = Stats()
        self.reset_rules: tuple[str, ...] = ()  # rules whose state a rebuild dropped
        self.left_service: tuple[str, ...] = ()  # devices a rebuild stopped judging
        self.relocated: tuple[str, ...] = ()  # devices a rebuild judges afresh (re-typed, moved)
        n = len(self.table)
        names = detector_names(self.rules)
        self.detectors = build_detectors(names, detectors, timezone)
        attrs = {a for r in self.rules for a in _attr_names(r)}
        self.ctx = Context(
            SeriesState(n), {},
            {a: attribute_column(a, self.table, attributes or {}) for a in attrs},
            ZoneInfo(timezone),
        )
        per_series = [(i, r) for i, r in enumerate(self.rules) if r.spatial_scope is None]
        self.routing, group_of = Routing.of_rules([r for _, r in per_series], self.table)
        self.series_rules = [
            SeriesRule.build(i, r, self.routing.groups[g].slots, self.table, self.ctx)
            for (i, r), g in zip(per_series, group_of, strict=True)]
        for sr, g in zip(self.series_rules, group_of, strict=True):
            self.routing.groups[g].rules.append(sr)
        by_id = {sr.rule.id: sr for sr in self.series_rules}
        self.area_rules = [
            AreaRule.build(i, r, self.table, by_id, self.ctx)
            for i, r in enumerate(self.rules) if r.spatial_scope is not None
        ]
        for name in names:
            self.place_detector(name, self.detectors[name], None, None)
        self._sweep = True  # the next tick judges every time-dependent member that reported
        self._ticked_ms = NEVER  # the latest tick

    def place_detector(self, name: str, detector: Detector, rows: np.ndarray | None,
                       scores: np.ndarray | None) -> None:
        """Install ``detector`` with rows for this engine's members of it, keeping ``rows``.

        ``rows`` and ``scores`` come from a previous engine (see `rules.engine.scoring.place`).
        """
        members = np.unique(np.concatenate(
            [sr.slots for sr in self.series_rules if name in sr.detectors]))
        self.detectors[name] = detector
        self.ctx.detector_rows[name], self.ctx.scores[name] = place(
            detector, members, len(self.table), rows, scores)

    def evaluate(self, batch: ReadingBatch, now_ms: int,
                 faults: ReadingBatch | None = None) -> list[Detection]:
        """Judge a batch of readings, then its out-of-range ``faults``, then tick at ``now_ms``.

        The first batch after a restart that left the platform's downtime open (see
        `rules.engine.restore.seed_downtime`) closes it at ``now_ms``.

        Returns:
            The state changes, sorted by (ts, rule order, subject).
        """
        if len(batch) and self.ctx.series.resume(now_ms):
            self.refile()
        out: list[Emitted] = []
        for slots, ts_ms, values in rounds(batch, self.ctx.series.last_ts, self.stats):
            self._round(slots, ts_ms, values, out, now_ms)
        if faults is not None and len(faults):
            self._faults(faults, out, now_ms)
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
        and are listed in the new engine's ``reset_rules``, devices that left service in its
        ``left_service``, devices re-typed or moved (judged afresh) in its ``relocated`` (see
        `rules.engine.rebuild`).

        Args:
            rules: The new rule set, or None to keep this one.
            registry: The grown registry (slots are append-only), or None to keep this one.
            attributes: Device attributes for ``attr()``, or None to keep these.
            now_ms: When the change happened: devices back in service count as heard then.

        Returns:
            The new engine, ready to take the next batch.

        Raises:
            ValueError: the new registry has fewer slots than this one.
            RuleError: the new rule set does not compile (as for `Engine`).
        """
        options = self.options.copy()
        if attributes is not None:
            options["attributes"] = attributes
        new = Engine(self.rules if rules is None else rules, registry or self.registry, **options)
        n_slots = len(new.table)
        fresh = relocated(self.table, new.table)
        carry_series(self.ctx.series, new.ctx.series, fresh)
        if now_ms is not None:
            restart_returned(self.table, new.table, new.ctx.series, now_ms)
        carry_rings(self.routing, new.routing, n_slots, fresh)
        for name in new.detectors:
            if name in self.detectors:
                rows = self.ctx.detector_rows[name].copy()
                rows[fresh] = -1  # new, empty rows
                new.place_detector(name, copy.deepcopy(self.detectors[name]), rows,
                                   self.ctx.scores[name])
        kept = (carry_rule_states(self.series_rules, new.series_rules, n_slots, fresh)
                | carry_area_states(self.area_rules, new.area_rules))
        new.stats = dataclasses.replace(self.stats)
        new.reset_rules = tuple(r.id for r in self.rules if r.id not in kept)
        new.left_service = left_service(self.table, new.table)
        new.relocated = tuple(sorted({str(d) for d in new.table.device_id[fresh]}))
        new.refile()
        return new

    def snapshot(self) -> Snapshot:
        """Copies of the learned state as named arrays, keyed by series identity (see
        `rules.engine.snapshot`); the engine is unchanged."""
        return take(self)

    def restore(self, snap: Snapshot) -> RestoreReport:
        """Apply a snapshot to this freshly built engine, where it still fits.

        Raises:
            SnapshotError: the snapshot is of another version or inconsistent; nothing applied.
        """
        report = restore(self, snap)
        self.refile()
        return report

    def refile(self) -> None:
        """Derive the deadlines and area counts again from the state, and judge every
        time-dependent member at the next tick: after the state was written other than by
        judging (restore, rebuild, seeding last readings or open alerts)."""
        for sr in self.series_rules:
            sr.moves.clear()
            sr.refile()
        for ar in self.area_rules:
            ar.refile()
        self._sweep = True

    def _finish(self, out: list[Emitted], now_ms: int) -> list[Detection]:
        self._tick(now_ms, out)
        detections = to_detections(out, self.table, self.rules, self.area_rules)
        self.stats.detections += len(detections)
        return detections

    def _round(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray,
               out: list[Emitted], now_ms: int) -> None:
        self.ctx.series.record(slots, ts_ms, values)
        scored = RoundScores.score(self.detectors, self.ctx, slots, ts_ms, values)
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
                            round_scores=scored.by_reading, sel=sel)
                    sr.judge(frame, rows, out, now_ms)
                    for name in sr.detectors:
                        scored.skip[name][sel] |= sr.state.state[rows] == FIRING
        scored.learn(self.detectors)

    def _faults(self, faults: ReadingBatch, out: list[Emitted], now_ms: int) -> None:
        """Record each series' newest fault and judge the ``out_of_range`` rules on it; the
        tick at ``now_ms`` judges every time-dependent rule on those series again (a fault is
        news to ``stale``)."""
        faults = faults.take((faults.slot >= 0) & (faults.slot < len(self.table)))
        if not len(faults):
            return
        order = np.lexsort((faults.ts_ms, faults.slot))
        newest = faults.take(order[np.r_[np.diff(faults.slot[order]) != 0, True]])
        series = self.ctx.series
        series.record_faults(newest.slot, newest.ts_ms)
        with np.errstate(all="ignore"):  # see `compile_expr`
            for group, sel, rows in self.routing.route(newest.slot):
                frames: dict[int, Frame] = {}
                gathers: dict = {}
                for sr in (sr for sr in group.rules if sr.rule.judges_faults):
                    frame = frames.get(sr.cap)
                    if frame is None:
                        slots = newest.slot[sel]
                        frame = frames[sr.cap] = Frame(
                            slots, newest.ts_ms[sel], newest.value[sel], rows, group.ring,
                            series.last_ts[slots], cap=sr.cap, gathers=gathers)
                    sr.judge(frame, rows, out, now_ms)
                for sr in (sr for sr in group.rules if sr.time_dependent):
                    sr.file_at(rows, now_ms)

    def _tick(self, now_ms: int, out: list[Emitted]) -> None:
        with np.errstate(all="ignore"):  # see `compile_expr`
            self._tick_rules(now_ms, out)

    def _tick_rules(self, now_ms: int, out: list[Emitted]) -> None:
        sweep = self._sweep or now_ms < self._ticked_ms
        for group in self.routing.groups:
            timed = [sr for sr in group.rules if sr.time_dependent]
            if timed:
                self._judge_due(group, timed, now_ms, sweep, out)
            for sr in group.rules:
                if sr.time_dependent or sr.rule.for_ms == 0:
                    continue
                rows, severity = sr.promote(now_ms)
                self.stats.tick_judged += len(rows)
                if len(rows):
                    slots = sr.slots[rows]
                    out.append(Emitted(np.full(len(rows), now_ms, dtype=np.int64), sr.index,
                                       slots, np.full(len(rows), FIRING, dtype=np.int8),
                                       severity, self.ctx.series.last_value[slots]))
        for ar in self.area_rules:
            self.stats.tick_judged += ar.judge(now_ms, out)
        for sr in self.series_rules:
            sr.moves.clear()
        self._sweep = False
        self._ticked_ms = now_ms if sweep else max(self._ticked_ms, now_ms)

    def _judge_due(self, group: Group, timed: list[SeriesRule], now_ms: int, sweep: bool,
                   out: list[Emitted]) -> None:
        """Judge at ``now_ms`` the members of ``group`` due for any of its time-dependent rules
        (every member that reported when sweeping)."""
        series = self.ctx.series
        if sweep:
            for sr in timed:
                sr.refile()
            rows = np.flatnonzero(series.last_ts[group.slots] != NEVER)
        else:
            due = [sr.take_due(now_ms) for sr in timed]
            rows = due[0] if len(due) == 1 else np.unique(np.concatenate(due))
            rows = rows[series.last_ts[group.slots[rows]] != NEVER]
        self.stats.tick_judged += len(rows)
        if not len(rows):
            return
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

    @property
    def nbytes(self) -> int:
        """Bytes held in state arrays (series, routing, rings, rule states, scores, detectors)."""
        total = self.ctx.series.nbytes + sum(s.nbytes for s in self.ctx.scores.values())
        total += sum(rows.nbytes for rows in self.ctx.detector_rows.values())
        total += self.routing.nbytes + sum(sr.nbytes for sr in self.series_rules)
        for detector in self.detectors.values():
            total += getattr(detector, "state_nbytes", lambda: 0)()
        return total + sum(ar.nbytes for ar in self.area_rules)


def _attr_names(rule: Rule) -> list[str]:
    return [n.name for n in rule.nodes() if isinstance(n, ast.Attr)]
