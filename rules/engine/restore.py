"""Put a `rules.engine.snapshot` back into a freshly built engine, and seed what others know.

`restore` matches the snapshot's series to the engine's by (device id, device type, place, metric)
(a snapshot written before places were recorded matches by the rest) and
applies only what still fits: series state of every matched series; rule state of rules whose
definition digest is unchanged (areas by name); window readings (the newest that fit the new
capacity); detector rows of detectors whose hyperparameters are unchanged. Everything else
starts fresh, as after `rules.engine.rebuild`. The snapshot is checked before anything is
changed: arrays missing or of the wrong shape raise `SnapshotError` and the engine stays as
built, so a damaged snapshot is never half-applied.

`seed_last_readings` takes the last stored reading of each series (from the time-series store)
where it is newer than what the engine knows, so staleness counts from the real last reading;
`seed_downtime` makes the platform's own downtime no device's silence;
`seed_open_alerts` marks (rule, subject) states firing (or pending) for the alerts still open,
so their clear condition produces a clear transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rules.engine.plan import subject_of
from rules.engine.snapshot import (
    SNAPSHOT_VERSION,
    Engine,
    Snapshot,
    detector_digest,
    fingerprint,
    place,
    rule_digest,
    texts,
)
from rules.engine.state import FIRING, INACTIVE, NEVER, PENDING, Ring, RuleState, SeriesState
from rules.errors import RuleError


class SnapshotError(RuleError):
    """A snapshot cannot be applied (wrong version, missing or mis-shaped arrays)."""


@dataclass
class RestoreReport:
    """What `restore` applied, and what it left fresh because it no longer fits."""

    series: int = 0  # series with a last reading restored
    unplaced_series: int = 0  # snapshot series with a reading that match no series now
    rules: list[str] = field(default_factory=list)
    rules_fresh: list[str] = field(default_factory=list)  # changed (or new) since the snapshot
    detectors: list[str] = field(default_factory=list)
    detectors_fresh: list[str] = field(default_factory=list)
    exact: bool = False  # the snapshot was taken with these very rules, detectors and series


@dataclass(frozen=True)
class OpenAlert:
    """What seeding needs of an open alert (the alerts layer owns the rest)."""

    rule_id: str
    subject: str
    device_id: str | None
    metric: str | None
    firing: bool  # firing or acknowledged; else pending
    severity: int
    since_ms: int


def restore(engine: Engine, snap: Snapshot) -> RestoreReport:
    """Apply ``snap`` to ``engine`` (built with no state yet); see the module docstring.

    Raises:
        SnapshotError: the snapshot is of another version or inconsistent; nothing applied.
    """
    _check(snap)
    report = RestoreReport(exact=texts(snap["meta.fingerprint"]) == [fingerprint(engine)])
    slot_of = _slot_map(engine, snap)
    placed = np.flatnonzero(slot_of >= 0)
    series = engine.ctx.series
    for name in SeriesState.FIELDS:
        getattr(series, name)[slot_of[placed]] = snap[f"series.{name}"][placed]
    has_reading = snap["series.last_ts"] != NEVER
    report.series = int(has_reading[placed].sum())
    report.unplaced_series = int(has_reading.sum()) - report.series
    _restore_rules(engine, snap, slot_of, report)
    _restore_rings(engine, snap, slot_of)
    _restore_detectors(engine, snap, slot_of, report)
    return report


def seed_last_readings(engine: Engine, slots: np.ndarray, ts_ms: np.ndarray,
                       values: np.ndarray) -> int:
    """Take each series' last stored reading where it is newer than the engine's; how many.

    ``slots`` are distinct. The reading does not enter windows or detectors (they learn from
    the stream); it sets the time staleness counts from and the value ``stuck`` compares with.
    """
    newer = ts_ms > engine.ctx.series.last_ts[slots]
    engine.ctx.series.record(slots[newer], ts_ms[newer], values[newer])
    engine.refile()
    return int(newer.sum())


def seed_downtime(engine: Engine, stopped_ms: int, resumed_ms: int | None,
                  earlier: Sequence[tuple[int, int | None]] = ()) -> None:
    """Count the platform's downtime, from ``stopped_ms`` (its last sign of life) to
    ``resumed_ms``, and its ``earlier`` recent ones, as no series' silence (see
    `SeriesState.heard_ts`), so that a second restart soon after the first does not forget the
    first. ``resumed_ms`` None leaves the downtime open until the first judged batch: a clock
    following the readings knows their time only then (`Engine.evaluate`); an earlier one left
    open never heard a batch, so it lasted until ``stopped_ms``.

    An earlier downtime that ended longer ago than the rules' longest ``stale`` window is
    dropped: whatever was silent across it has been silent that long since, with or without it.
    """
    if resumed_ms is not None:
        stopped_ms = min(stopped_ms, resumed_ms)
    horizon = max((d for sr in engine.series_rules for d in sr.time_terms[0]), default=0)
    closed = [(s, stopped_ms if r is None else min(r, stopped_ms)) for s, r in earlier
              if s < stopped_ms]
    engine.ctx.series.downtimes = [*((s, r) for s, r in closed if r >= stopped_ms - horizon),
                                   (stopped_ms, resumed_ms)]
    engine.refile()


def seed_open_alerts(engine: Engine, alerts: Iterable[OpenAlert]) -> int:
    """Mark the (rule, subject) state of open alerts that the engine holds inactive; how many.

    A subject the engine no longer judges (rule gone, device retired) is left alone.
    """
    series_rules = {sr.rule.id: sr for sr in engine.series_rules}
    area_rules = {ar.rule.id: ar for ar in engine.area_rules}
    seeded = 0
    for alert in alerts:
        state, row = _state_row(engine, series_rules, area_rules, alert)
        if state is None or state.state[row] != INACTIVE:
            continue
        state.state[row] = FIRING if alert.firing else PENDING
        state.severity[row] = alert.severity
        state.since_ms[row] = alert.since_ms
        seeded += 1
    engine.refile()
    return seeded


def _state_row(engine: Engine, series_rules: dict, area_rules: dict,
               alert: OpenAlert) -> tuple[RuleState | None, int]:
    if alert.rule_id in series_rules and alert.device_id and alert.metric:
        sr = series_rules[alert.rule_id]
        slot = engine.registry.slot(alert.device_id, alert.metric)
        rows = np.flatnonzero(sr.slots == slot) if slot is not None else np.zeros(0, np.int64)
        return (sr.state, int(rows[0])) if len(rows) else (None, 0)
    if alert.rule_id in area_rules:
        ar = area_rules[alert.rule_id]
        subjects = [subject_of(ar.scope if ar.scope == "district" else "grid", a)
                    for a in ar.areas]
        if alert.subject in subjects:
            return ar.state, subjects.index(alert.subject)
    return None, 0


def _check(snap: Snapshot) -> None:
    try:
        version = int(snap["meta.version"][0])
        if version != SNAPSHOT_VERSION:
            raise SnapshotError(f"snapshot version {version}, expected {SNAPSHOT_VERSION}")
        n = len(snap["series.device"])
        _same_length(snap, ["series.metric", *(f"series.{f}" for f in SeriesState.FIELDS)], n)
        _same_length(snap, ["devices.type"], len(snap["devices.id"]))
        for prefix, ids in (("rule", "rules.id"), ("area", "areas.id")):
            for k in range(len(snap[ids])):
                key = f"{prefix}.{k}.{'slots' if prefix == 'rule' else 'names'}"
                _same_length(snap, [f"{prefix}.{k}.{c}" for c in ("state", "since_ms",
                                                                  "severity")],
                             len(snap[key]))
        for k in range(int(snap["rings.count"][0])):
            rows = len(snap[f"ring.{k}.slots"])
            _same_length(snap, [f"ring.{k}.count", f"ring.{k}.ts", f"ring.{k}.value"], rows)
        for k in range(len(snap["detectors.name"])):
            rows = len(snap[f"detector.{k}.slots"])
            _same_length(snap, [f"detector.{k}.scores", *_detector_state_names(snap, k)], rows)
        _in_range(snap["series.device"], len(snap["devices.id"]))
        _in_range(snap["series.metric"], len(snap["metrics"]))
        _in_range(snap["devices.type"], len(snap["types"]))
        if "devices.place" in snap:
            _same_length(snap, ["devices.place"], len(snap["devices.id"]))
            _in_range(snap["devices.place"], len(snap["places"]))
    except KeyError as exc:
        raise SnapshotError(f"snapshot lacks array {exc}") from None


def _same_length(snap: Snapshot, names: list[str], n: int) -> None:
    for name in names:
        if len(snap[name]) != n:
            raise SnapshotError(f"snapshot array {name} has {len(snap[name])} rows, expected {n}")


def _in_range(index: np.ndarray, n: int) -> None:
    if len(index) and (index.min() < 0 or index.max() >= n):
        raise SnapshotError("snapshot series table points outside itself")


def _detector_state_names(snap: Snapshot, k: int) -> list[str]:
    prefix = f"detector.{k}.state."
    return [name for name in snap if name.startswith(prefix)]


def _slot_map(engine: Engine, snap: Snapshot) -> np.ndarray:
    """Snapshot slot -> the engine's slot of the same (device, type, place, metric), or -1."""
    registry = engine.registry
    device_ids, types = texts(snap["devices.id"]), texts(snap["types"])
    metrics = texts(snap["metrics"])
    places = (texts(snap["places"]), snap["devices.place"].tolist()) \
        if "devices.place" in snap else None
    same = [(d := registry.get(i)) is not None and d.type == types[t]
            and (places is None or place(d.district, d.grid) == places[0][places[1][k]])
            for k, (i, t) in enumerate(zip(device_ids, snap["devices.type"].tolist(),
                                           strict=True))]
    out = np.full(len(snap["series.device"]), -1, dtype=np.int64)
    for i, (dev, met) in enumerate(zip(snap["series.device"].tolist(),
                                       snap["series.metric"].tolist(), strict=True)):
        if same[dev]:
            slot = registry.slot(device_ids[dev], metrics[met])
            if slot is not None and slot < len(engine.table):
                out[i] = slot
    return out


def _row_map(slots: np.ndarray, n_slots: int) -> np.ndarray:
    rows = np.full(n_slots, -1, dtype=np.int64)
    rows[slots] = np.arange(len(slots))
    return rows


def _restore_rules(engine: Engine, snap: Snapshot, slot_of: np.ndarray,
                   report: RestoreReport) -> None:
    n = len(engine.table)
    saved = {i: (k, d) for k, (i, d) in enumerate(zip(texts(snap["rules.id"]),
                                                      texts(snap["rules.digest"]), strict=True))}
    for sr in engine.series_rules:
        k, digest = saved.get(sr.rule.id, (-1, ""))
        if digest != rule_digest(sr.rule):
            report.rules_fresh.append(sr.rule.id)
            continue
        slots = slot_of[snap[f"rule.{k}.slots"]]
        rows = np.where(slots >= 0, _row_map(sr.slots, n)[np.maximum(slots, 0)], -1)
        found = np.flatnonzero(rows >= 0)
        _copy_state(snap, f"rule.{k}", sr.state, found, rows[found])
        report.rules.append(sr.rule.id)
    saved = {i: (k, d) for k, (i, d) in enumerate(zip(texts(snap["areas.id"]),
                                                      texts(snap["areas.digest"]), strict=True))}
    for ar in engine.area_rules:
        k, digest = saved.get(ar.rule.id, (-1, ""))
        if digest != rule_digest(ar.rule):
            report.rules_fresh.append(ar.rule.id)
            continue
        index = {a: i for i, a in enumerate(ar.areas)}
        pairs = [(j, index[a]) for j, a in enumerate(texts(snap[f"area.{k}.names"]))
                 if a in index]
        src, dst = (np.array(c, dtype=np.int64) for c in zip(*pairs, strict=True)) \
            if pairs else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        _copy_state(snap, f"area.{k}", ar.state, src, dst)
        report.rules.append(ar.rule.id)


def _copy_state(snap: Snapshot, prefix: str, state: RuleState, src: np.ndarray,
                dst: np.ndarray) -> None:
    for name in ("state", "since_ms", "severity"):
        getattr(state, name)[dst] = snap[f"{prefix}.{name}"][src]


def _restore_rings(engine: Engine, snap: Snapshot, slot_of: np.ndarray) -> None:
    """Fill each ring from the saved ring with the most readings of the series (newest kept)."""
    n = len(engine.table)
    saved = []
    for k in range(int(snap["rings.count"][0])):
        ts, value = snap[f"ring.{k}.ts"], snap[f"ring.{k}.value"]
        ring = Ring(len(ts), max(1, ts.shape[1]) if ts.ndim == 2 else 1)
        count = snap[f"ring.{k}.count"]
        for j in range(ring.cap - 1, -1, -1):  # oldest first
            sel = np.flatnonzero(count > j)
            ring.push(sel, ts[sel, j], value[sel, j])
        slots = slot_of[snap[f"ring.{k}.slots"]]
        saved.append((ring, slots))
    saved.sort(key=lambda s: -s[0].cap)
    for group in engine.routing.groups:
        if group.ring is None or len(group.slots) == 0:
            continue
        filled = np.zeros(len(group.slots), dtype=bool)
        for ring, slots in saved:
            keep = slots >= 0
            src_rows = np.full(n, -1, dtype=np.int64)
            src_rows[slots[keep]] = np.flatnonzero(keep)
            old_rows = src_rows[group.slots]
            take = np.flatnonzero((old_rows >= 0) & ~filled)
            if len(take):
                group.ring.carry(ring, old_rows[take], take)
                filled[take] = True


def _restore_detectors(engine: Engine, snap: Snapshot, slot_of: np.ndarray,
                       report: RestoreReport) -> None:
    names = texts(snap["detectors.name"])
    digests = texts(snap["detectors.digest"])
    for name, detector in list(engine.detectors.items()):
        k = names.index(name) if name in names else -1
        if k < 0 or digests[k] != detector_digest(detector):
            report.detectors_fresh.append(name)
            continue
        saved_slots = snap[f"detector.{k}.slots"]
        slots = np.where(saved_slots >= 0, slot_of[np.maximum(saved_slots, 0)], -1)
        rows = np.where(slots >= 0, engine.ctx.detector_rows[name][np.maximum(slots, 0)], -1)
        src = np.flatnonzero(rows >= 0)
        prefix = f"detector.{k}.state."
        arrays = {n[len(prefix):]: a for n, a in snap.items() if n.startswith(prefix)}
        fits = getattr(detector, "fits", None)
        if fits is None or not fits(arrays):  # no array state, or arrays of another shape
            report.detectors_fresh.append(name)
            continue
        detector.copy_rows(arrays, src, rows[src])
        engine.ctx.scores[name][rows[src]] = snap[f"detector.{k}.scores"][src]
        report.detectors.append(name)
