"""Carry over, into an engine built for a changed rule set or a grown registry, what stays valid.

`rules.engine.engine.Engine.rebuild` builds the new engine completely, then copies state into it
with these functions (the old engine is not touched, callers swap the reference). Slots are
append-only (`devices.registry.Registry.updated` keeps slot numbers), so state indexed by slot
stays meaningful:

- series state (last value and time, start of the run of equal values) of every old slot;
- window readings: each new ring is filled from the old ring with the largest capacity that held
  the series (the newest readings that fit);
- detectors still used under the same name: a copy with its learned state; series that start
  being judged by it get new rows (`Engine.place_detector`);
- rule state (condition state, ``for`` timer start, last severity) of every rule whose id and
  definition are unchanged, per series (by slot) or per area (by area name);
- the counters in `rules.engine.rounds.Stats`.

A device re-typed or moved to another district or grid cell is judged afresh too: its history
describes another sensor, so its series state, windows, detector rows and rule states start
empty, and it is listed in ``Engine.relocated`` so the alerts layer closes its open alerts.

A device back in service (out of maintenance) is judged afresh: its series count as last heard
at ``now_ms``, so staleness (and a ``stuck`` run) counts from its return, not from its last
reading before the maintenance. Devices that leave service (maintenance, retired) are listed in
``Engine.left_service``: their series are no longer judged, so the alerts layer closes their open
alerts, which no engine would ever report cleared.

A rule whose definition changed starts fresh in the new engine (inactive everywhere, no
detection reported for the change), and a removed rule is simply gone. Their ids are listed in
``Engine.reset_rules``: the alerts layer closes the open alerts of those rules, because no engine
will ever report them cleared.
"""

from __future__ import annotations

import numpy as np

from rules.engine.area import AreaRule
from rules.engine.groups import Routing
from rules.engine.plan import SlotTable
from rules.engine.series_rule import SeriesRule
from rules.engine.state import NEVER, RuleState, SeriesState
from rules.language.model import Rule


def relocated(old: SlotTable, new: SlotTable) -> np.ndarray:
    """Old slots whose device has another type, district or grid cell in ``new``."""
    n = min(len(old), len(new))  # a shrunk registry is refused by `carry_series`
    return np.flatnonzero((old.type[:n] != new.type[:n]) | (old.district[:n] != new.district[:n])
                          | (old.grid[:n] != new.grid[:n]))


def carry_series(old: SeriesState, new: SeriesState, fresh: np.ndarray) -> None:
    """Copy the last reading of every old slot but the ``fresh`` ones, and the platform's recent
    downtimes, into ``new``.

    Raises:
        ValueError: ``new`` has fewer slots than ``old``.
    """
    n_old, n_new = len(old.last_ts), len(new.last_ts)
    if n_new < n_old:
        raise ValueError(f"registry shrank from {n_old} to {n_new} slots; slots are append-only")
    keep = np.setdiff1d(np.arange(n_old), fresh)
    for name in SeriesState.FIELDS:
        getattr(new, name)[keep] = getattr(old, name)[keep]
    new.downtimes = list(old.downtimes)


def restart_returned(old: SlotTable, new: SlotTable, series: SeriesState, now_ms: int) -> None:
    """Series of devices back in service count as last heard at ``now_ms`` (never stays never)."""
    n_old = len(old)
    returned = np.flatnonzero(old.out_of_service & ~new.out_of_service[:n_old])
    heard = returned[series.last_ts[returned] != NEVER]
    series.last_ts[heard] = np.maximum(series.last_ts[heard], now_ms)
    series.run_start_ts[heard] = series.last_ts[heard]


def left_service(old: SlotTable, new: SlotTable) -> tuple[str, ...]:
    """Ids of the devices judged in ``old`` whose series are out of service in ``new``."""
    n_old = len(old)
    gone = np.flatnonzero(~old.out_of_service & new.out_of_service[:n_old])
    return tuple(sorted({str(d) for d in old.device_id[gone]}))


def carry_rule_states(old: list[SeriesRule], new: list[SeriesRule], n_slots: int,
                      fresh: np.ndarray) -> set[str]:
    """Copy the per-series state of each unchanged rule but of ``fresh`` slots; the ids of the
    rules kept."""
    before = {sr.rule.id: sr for sr in old}
    kept = set()
    for sr in new:
        prev = before.get(sr.rule.id)
        if prev is None or not _same(prev.rule, sr.rule):
            continue
        old_rows = _row_map(prev.slots, n_slots, fresh)[sr.slots]
        found = np.flatnonzero(old_rows >= 0)
        _copy_state(prev.state, sr.state, old_rows[found], found)
        kept.add(sr.rule.id)
    return kept


def carry_area_states(old: list[AreaRule], new: list[AreaRule]) -> set[str]:
    """Copy the per-area state of each unchanged area rule; the ids of the rules kept."""
    before = {ar.rule.id: ar for ar in old}
    kept = set()
    for ar in new:
        prev = before.get(ar.rule.id)
        if prev is None or not _same(prev.rule, ar.rule):
            continue
        index = {a: i for i, a in enumerate(prev.areas)}
        pairs = [(i, index[a]) for i, a in enumerate(ar.areas) if a in index]
        if pairs:
            dst, src = (np.array(p, dtype=np.int64) for p in zip(*pairs, strict=True))
            _copy_state(prev.state, ar.state, src, dst)
        kept.add(ar.rule.id)
    return kept


def carry_rings(old: Routing, new: Routing, n_slots: int, fresh: np.ndarray) -> None:
    """Fill each of ``new``'s rings from the largest old ring that held each of its series
    (but the ``fresh`` slots)."""
    sources = sorted(((g, g.ring) for g in old.groups
                      if g.ring is not None and len(g.slots)), key=lambda source: -source[1].cap)
    for group in new.groups:
        if group.ring is None or len(group.slots) == 0:
            continue
        filled = np.zeros(len(group.slots), dtype=bool)
        for src, ring in sources:
            old_rows = _row_map(src.slots, n_slots, fresh)[group.slots]
            take = np.flatnonzero((old_rows >= 0) & ~filled)
            if len(take):
                group.ring.carry(ring, old_rows[take], take)
                filled[take] = True


def _same(a: Rule, b: Rule) -> bool:
    return a.model_dump() == b.model_dump()


def _row_map(slots: np.ndarray, n_slots: int, fresh: np.ndarray) -> np.ndarray:
    """Each slot's row in ``slots``; -1 where it has none or is ``fresh``."""
    rows = np.full(n_slots, -1, dtype=np.int64)
    rows[slots] = np.arange(len(slots))
    rows[fresh] = -1
    return rows


def _copy_state(src: RuleState, dst: RuleState, src_rows: np.ndarray,
                dst_rows: np.ndarray) -> None:
    for name in ("state", "since_ms", "severity"):
        getattr(dst, name)[dst_rows] = getattr(src, name)[src_rows]
