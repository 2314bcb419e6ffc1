"""Build a new engine for a changed rule set or a grown registry, carrying over what stays valid.

Slots are append-only (`devices.registry.Registry.updated` keeps slot numbers), so state indexed
by slot stays meaningful and is copied into the new engine, which is built completely before it
is returned (the old engine is not touched, callers swap the reference):

- series state (last value and time, start of the run of equal values) of every old slot;
- window readings: each new ring is filled from the old ring with the largest capacity that held
  the series (the newest readings that fit);
- detectors still used under the same name: a copy with its learned state; series that start
  being judged by it get new rows;
- rule state (condition state, ``for`` timer start, last severity) of every rule whose id and
  definition are unchanged, per series (by slot) or per area (by area name);
- the counters in `rules.engine.engine.Stats`.

A device back in service (out of maintenance) is judged afresh: its series count as last heard
at ``now_ms``, so staleness (and a ``stuck`` run) counts from its return, not from its last
reading before the maintenance.

A rule whose definition changed starts fresh in the new engine (inactive everywhere, no
detection reported for the change), and a removed rule is simply gone. Their ids are listed in
``Engine.reset_rules``: the alerts layer closes the open alerts of those rules, because no engine
will ever report them cleared.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from devices.registry import Registry
from rules.engine.state import NEVER, RuleState
from rules.language.model import Rule

if TYPE_CHECKING:
    from rules.engine.engine import Engine


def rebuild(old: Engine, rules: Sequence[Rule] | None = None, registry: Registry | None = None,
            attributes: Mapping[str, Mapping[str, float]] | None = None,
            now_ms: int | None = None) -> Engine:
    """A new engine for ``rules`` and ``registry`` (each defaults to ``old``'s) with old state.

    Args:
        old: The running engine; left unchanged.
        rules: The new rule set, or None to keep the old one.
        registry: The new registry (a superset of the old slots), or None to keep the old one.
        attributes: Device attributes for ``attr()``, or None to keep the old ones.
        now_ms: The time of the change: devices back in service count as heard from then
            (None: they keep their last reading's time).

    Returns:
        The new engine; ``reset_rules`` holds the ids of old rules whose state was dropped.

    Raises:
        ValueError: the new registry has fewer slots than the old one.
        RuleError: the new rule set does not compile (as for `rules.engine.engine.Engine`).
    """
    from rules.engine.engine import Engine

    options = old.options.copy()
    if attributes is not None:
        options["attributes"] = attributes
    new = Engine(old.rules if rules is None else rules, registry or old.registry, **options)
    n_old = len(old.table)
    if len(new.table) < n_old:
        raise ValueError(f"registry shrank from {n_old} to {len(new.table)} slots; "
                         "slots are append-only")
    for name in ("last_ts", "last_value", "run_start_ts"):
        getattr(new.ctx.series, name)[:n_old] = getattr(old.ctx.series, name)
    if now_ms is not None:
        _restart_returned(old, new, now_ms)
    _carry_rings(old, new)
    for name in new.detectors:
        if name in old.detectors:
            new.place_detector(name, copy.deepcopy(old.detectors[name]),
                               old.ctx.detector_rows[name], old.ctx.scores[name])
    kept = _carry_rule_states(old, new)
    new.stats = dataclasses.replace(old.stats)
    new.reset_rules = tuple(r.id for r in old.rules if r.id not in kept)
    return new


def _restart_returned(old: Engine, new: Engine, now_ms: int) -> None:
    n_old = len(old.table)
    returned = np.flatnonzero(old.table.out_of_service & ~new.table.out_of_service[:n_old])
    series = new.ctx.series
    heard = returned[series.last_ts[returned] != NEVER]  # never heard stays never (as new)
    series.last_ts[heard] = np.maximum(series.last_ts[heard], now_ms)
    series.run_start_ts[heard] = series.last_ts[heard]


def _same(a: Rule, b: Rule) -> bool:
    return a.model_dump() == b.model_dump()


def _row_map(slots: np.ndarray, n_slots: int) -> np.ndarray:
    rows = np.full(n_slots, -1, dtype=np.int64)
    rows[slots] = np.arange(len(slots))
    return rows


def _copy_state(src: RuleState, dst: RuleState, src_rows: np.ndarray,
                dst_rows: np.ndarray) -> None:
    for name in ("state", "since_ms", "severity"):
        getattr(dst, name)[dst_rows] = getattr(src, name)[src_rows]


def _carry_rule_states(old: Engine, new: Engine) -> set[str]:
    n = len(new.table)
    before = {sr.rule.id: sr for sr in old.series_rules}
    kept = set()
    for sr in new.series_rules:
        prev = before.get(sr.rule.id)
        if prev is None or not _same(prev.rule, sr.rule):
            continue
        old_rows = _row_map(prev.slots, n)[sr.slots]
        found = np.flatnonzero(old_rows >= 0)
        _copy_state(prev.state, sr.state, old_rows[found], found)
        kept.add(sr.rule.id)
    areas_before = {ar.rule.id: ar for ar in old.area_rules}
    for ar in new.area_rules:
        prev_area = areas_before.get(ar.rule.id)
        if prev_area is None or not _same(prev_area.rule, ar.rule):
            continue
        index = {a: i for i, a in enumerate(prev_area.areas)}
        pairs = [(i, index[a]) for i, a in enumerate(ar.areas) if a in index]
        if pairs:
            dst, src = (np.array(p, dtype=np.int64) for p in zip(*pairs, strict=True))
            _copy_state(prev_area.state, ar.state, src, dst)
        kept.add(ar.rule.id)
    return kept


def _carry_rings(old: Engine, new: Engine) -> None:
    n = len(new.table)
    sources = sorted(((g, g.ring) for g in old.routing.groups
                      if g.ring is not None and len(g.slots)), key=lambda source: -source[1].cap)
    for group in new.routing.groups:
        if group.ring is None or len(group.slots) == 0:
            continue
        filled = np.zeros(len(group.slots), dtype=bool)
        for src, ring in sources:
            old_rows = _row_map(src.slots, n)[group.slots]
            take = np.flatnonzero((old_rows >= 0) & ~filled)
            if len(take):
                group.ring.carry(ring, old_rows[take], take)
                filled[take] = True
