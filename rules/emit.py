"""Turn the engine's emitted arrays into `Detection` objects, in (ts, rule order, subject) order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rules.detection import Detection, DetectionState, Severity
from rules.state import CLEARED, FIRING, PENDING

if TYPE_CHECKING:
    from rules.engine import Engine

STATES = {PENDING: DetectionState.PENDING, FIRING: DetectionState.FIRING,
          CLEARED: DetectionState.CLEARED}
SEVERITIES = list(Severity)


@dataclass(frozen=True)
class Emitted:
    """Changes of one rule: subject is a slot (per-series rule) or an area index (area rule)."""

    ts_ms: np.ndarray
    rule_index: int
    subject: np.ndarray
    change: np.ndarray
    severity: np.ndarray
    value: np.ndarray


def to_detections(chunks: list[Emitted], engine: Engine) -> list[Detection]:
    """Sort the emitted changes and describe each one as a `Detection`."""
    if not chunks:
        return []
    ts = np.concatenate([c.ts_ms for c in chunks])
    rule = np.concatenate([np.full(len(c.ts_ms), c.rule_index) for c in chunks])
    subject = np.concatenate([c.subject for c in chunks])
    change = np.concatenate([c.change for c in chunks])
    severity = np.concatenate([c.severity for c in chunks])
    value = np.concatenate([c.value for c in chunks])
    areas = {ar.index: ar for ar in engine.area_rules}
    table, rules = engine.table, engine.rules
    order = np.lexsort((subject, rule, ts))
    rule, subject = rule[order], subject[order]
    slot = np.where(np.isin(rule, list(areas)), 0, subject) if areas else subject
    columns = [c[slot].tolist() if len(table) else [None] * len(slot)
               for c in (table.device_id, table.metric, table.district, table.grid)]
    heads = [(r.id, r.category) for r in rules]
    out = []
    for t, r_i, s, c, sev, v, device_id, metric, district, grid in zip(
            ts[order].tolist(), rule.tolist(), subject.tolist(), change[order].tolist(),
            severity[order].tolist(), value[order].tolist(), *columns, strict=True):
        tail = (STATES[c], SEVERITIES[sev], t, v)
        if r_i in areas:
            name, area_district, area_grid = areas[r_i].describe(s)
            out.append(Detection(*heads[r_i], name, *tail, district=area_district,
                                 grid=area_grid))
        else:
            out.append(Detection(*heads[r_i], device_id, *tail, device_id=device_id,
                                 metric=metric, district=district, grid=grid))
    return out
