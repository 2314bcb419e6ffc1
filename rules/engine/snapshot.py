"""An engine's state as named numpy arrays, keyed by series identity rather than slot position.

`take` copies what the engine has learned into a flat ``{name: array}`` dict (plain dtypes only,
so it saves with ``np.savez`` and loads without pickle); `rules.engine.restore` puts it back
into a freshly built engine. Slots are positions in one registry snapshot, and a restarted
platform numbers them afresh, so every per-series array is indexed by the snapshot's own series
table (``series.device``/``series.metric`` into ``devices.*`` and ``metrics``), which restore
matches by (device id, device type, place, metric): a device added, retired, re-typed or moved in
between shifts nothing, and the series of a device re-typed or moved to another district or grid
cell start fresh (their history describes another sensor).

Rule states and detectors carry a digest of their definition (the rule, the detector's
hyperparameters): restore applies them only where the digest still matches.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

import numpy as np

from devices.registry import Registry
from rules.engine.area import AreaRule
from rules.engine.compile import Context
from rules.engine.groups import Routing
from rules.engine.plan import SlotTable
from rules.engine.series_rule import SeriesRule
from rules.engine.state import INACTIVE, NEVER, SeriesState
from rules.language.model import Rule

SNAPSHOT_VERSION = 2  # 2: series.fault_ts
Snapshot = dict[str, np.ndarray]


class Engine(Protocol):
    """The parts of `rules.engine.engine.Engine` a snapshot reads and a restore fills."""

    rules: list[Rule]
    registry: Registry
    table: SlotTable
    ctx: Context
    routing: Routing
    series_rules: list[SeriesRule]
    area_rules: list[AreaRule]
    detectors: dict[str, Any]

    def refile(self) -> None: ...


def rule_digest(rule: Rule) -> str:
    """A digest of a rule's whole definition: equal digests, same judgement."""
    text = json.dumps(rule.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def detector_digest(detector: object) -> str:
    """A digest of a detector's class and hyperparameters (its repr lists them)."""
    return hashlib.sha256(repr(detector).encode()).hexdigest()[:32]


def fingerprint(engine: Engine) -> str:
    """A digest of the engine's rules, detectors and series keys: equal when a checkpoint fits
    exactly (restore still works key by key when it does not)."""
    h = hashlib.sha256()
    for rule in engine.rules:
        h.update(rule_digest(rule).encode())
    for name, detector in engine.detectors.items():
        h.update(f"{name}={detector_digest(detector)}".encode())
    t = engine.table
    for column in (t.device_id, t.type, t.district, t.grid, t.metric):
        h.update("\x1f".join(map(str, column.tolist())).encode())
    return h.hexdigest()[:32]


def take(engine: Engine) -> Snapshot:
    """Copies of everything ``engine`` has learned, as named arrays (the engine is unchanged)."""
    out: Snapshot = {"meta.version": np.array([SNAPSHOT_VERSION]),
                     "meta.fingerprint": _text([fingerprint(engine)])}
    out |= _series_table(engine)
    series = engine.ctx.series
    out |= {f"series.{name}": getattr(series, name).copy() for name in SeriesState.FIELDS}
    out["rules.id"] = _text([sr.rule.id for sr in engine.series_rules])
    out["rules.digest"] = _text([rule_digest(sr.rule) for sr in engine.series_rules])
    for k, sr in enumerate(engine.series_rules):
        live = np.flatnonzero(sr.state.state != INACTIVE)
        out[f"rule.{k}.slots"] = sr.slots[live].astype(np.int64)
        out |= _rule_state(f"rule.{k}", sr.state, live)
    out["areas.id"] = _text([ar.rule.id for ar in engine.area_rules])
    out["areas.digest"] = _text([rule_digest(ar.rule) for ar in engine.area_rules])
    for k, ar in enumerate(engine.area_rules):
        live = np.flatnonzero(ar.state.state != INACTIVE)
        out[f"area.{k}.names"] = _text([ar.areas[i] for i in live.tolist()])
        out |= _rule_state(f"area.{k}", ar.state, live)
    rings = [g for g in engine.routing.groups if g.ring is not None and len(g.slots)]
    out["rings.count"] = np.array([len(rings)])
    for k, group in enumerate(rings):
        assert group.ring is not None
        held = np.flatnonzero(group.ring.count > 0)
        ts, value, _ = group.ring.newest_first(held, group.ring.cap)
        out |= {f"ring.{k}.slots": group.slots[held].astype(np.int64),
                f"ring.{k}.count": group.ring.count[held].copy(),
                f"ring.{k}.ts": ts, f"ring.{k}.value": value.copy()}
    names = list(engine.detectors)
    out["detectors.name"] = _text(names)
    out["detectors.digest"] = _text([detector_digest(engine.detectors[n]) for n in names])
    for k, name in enumerate(names):
        out |= _detector(f"detector.{k}", engine, name)
    return out


def _series_table(engine: Engine) -> Snapshot:
    """Each slot as (device index, metric index); devices as (id, type index, place index)."""
    t = engine.table
    devices: dict[str, int] = {}
    device = np.array([devices.setdefault(d, len(devices)) for d in t.device_id.tolist()],
                      dtype=np.int32)
    first = np.unique(device, return_index=True)[1] if len(device) else np.zeros(0, np.int64)
    types, type_of = _factorize(t.type[first].tolist())
    places, place_of = _factorize(
        [place(d, g) for d, g in zip(t.district[first].tolist(), t.grid[first].tolist(),
                                     strict=True)])
    metrics, metric_of = _factorize(t.metric.tolist())
    return {"devices.id": _text(list(devices)), "devices.type": type_of, "types": _text(types),
            "devices.place": place_of, "places": _text(places),
            "series.device": device, "series.metric": metric_of, "metrics": _text(metrics)}


def place(district: str, grid: str | None) -> str:
    """A device's place as one text (ids never hold ``/``)."""
    return f"{district}/{grid or ''}"


def _factorize(values: list[str]) -> tuple[list[str], np.ndarray]:
    index: dict[str, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int32)
    return list(index), codes


def _rule_state(prefix: str, state: object, rows: np.ndarray) -> Snapshot:
    return {f"{prefix}.{n}": getattr(state, n)[rows].copy()
            for n in ("state", "since_ms", "severity")}


def _detector(prefix: str, engine: Engine, name: str) -> Snapshot:
    """The detector's rows with the snapshot slot each belongs to (its scores and state)."""
    row_of = engine.ctx.detector_rows[name]
    n_rows = len(engine.ctx.scores[name])
    slot_of_row = np.full(n_rows, -1, dtype=np.int64)
    members = np.flatnonzero(row_of >= 0)
    slot_of_row[row_of[members]] = members
    out = {f"{prefix}.slots": slot_of_row, f"{prefix}.scores": engine.ctx.scores[name].copy()}
    state: dict[str, np.ndarray] = getattr(engine.detectors[name], "state_arrays", dict)()
    return out | {f"{prefix}.state.{k}": v[:n_rows].copy() for k, v in state.items()}


def _text(values: list[str]) -> np.ndarray:
    """Strings as UTF-8 bytes (``S`` dtype): loads without pickle, a byte per ASCII char."""
    return np.array([v.encode() for v in values], dtype=np.bytes_) if values \
        else np.zeros(0, dtype="S1")


def texts(array: np.ndarray) -> list[str]:
    return [v.decode() for v in array.tolist()]


def reported(snapshot: Snapshot) -> int:
    """Series of ``snapshot`` that have a last reading."""
    return int((snapshot["series.last_ts"] != NEVER).sum())
