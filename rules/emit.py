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
    table = engine.table
    out = []
    for i in np.lexsort((subject, rule, ts)):
        r = engine.rules[int(rule[i])]
        s = int(subject[i])
        head = (r.id, r.category)
        tail = (STATES[int(change[i])], Severity(int(severity[i])), int(ts[i]), float(value[i]))
        if int(rule[i]) in areas:
            name, district, grid = areas[int(rule[i])].describe(s)
            out.append(Detection(*head, name, *tail, district=district, grid=grid))
        else:
            out.append(Detection(*head, str(table.device_id[s]), *tail,
                                 device_id=str(table.device_id[s]), metric=str(table.metric[s]),
                                 district=str(table.district[s]), grid=str(table.grid[s])))
    return out
