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
    out = []
    for t, r_i, s, c, sev, v in zip(ts[order].tolist(), rule[order].tolist(),
                                    subject[order].tolist(), change[order].tolist(),
                                    severity[order].tolist(), value[order].tolist(), strict=True):
        r = rules[r_i]
        head = (r.id, r.category)
        tail = (STATES[c], SEVERITIES[sev], t, v)
        if r_i in areas:
            name, district, grid = areas[r_i].describe(s)
            out.append(Detection(*head, name, *tail, district=district, grid=grid))
        else:
            device_id = str(table.device_id[s])
            out.append(Detection(*head, device_id, *tail, device_id=device_id,
                                 metric=str(table.metric[s]), district=str(table.district[s]),
                                 grid=str(table.grid[s])))
    return out
