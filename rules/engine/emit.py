"""Turn the engine's emitted arrays into `Detection` objects, in (ts, rule order, subject) order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rules.detection import Detection, DetectionState, Severity, detections_from_columns
from rules.engine.plan import SlotTable
from rules.engine.state import CLEARED, FIRING, PENDING
from rules.language.model import Rule

_STATES = np.empty(4, dtype=object)  # indexed by the state codes of `rules.engine.state`
_STATES[[PENDING, FIRING, CLEARED]] = [
    DetectionState.PENDING, DetectionState.FIRING, DetectionState.CLEARED]
_SEVERITIES = np.array(list(Severity), dtype=object)


@dataclass(frozen=True)
class Emitted:
    """Changes of one rule: subject is a slot (per-series rule) or an area index (area rule)."""

    ts_ms: np.ndarray
    rule_index: int
    subject: np.ndarray
    change: np.ndarray
    severity: np.ndarray
    value: np.ndarray


class AreaSubjects(Protocol):
    """An area rule, as far as naming its subjects goes (see `rules.engine.area.AreaRule`)."""

    index: int

    def describe(self, area: int) -> tuple[str, str | None, str | None]: ...


def to_detections(chunks: list[Emitted], table: SlotTable, rules: Sequence[Rule],
                  area_rules: Sequence[AreaSubjects]) -> list[Detection]:
    """Sort the emitted changes and describe each one as a `Detection`.

    Args:
        chunks: The changes, each of the ``rule_index``-th rule of ``rules``.
        table: The slots the subjects of per-series rules refer to.
        rules: The engine's rules, in rule order.
        area_rules: The area rules among them, which name their own subjects.
    """
    if not chunks:
        return []
    ts = np.concatenate([c.ts_ms for c in chunks])
    rule = np.concatenate([np.full(len(c.ts_ms), c.rule_index) for c in chunks])
    subject = np.concatenate([c.subject for c in chunks])
    change = np.concatenate([c.change for c in chunks])
    severity = np.concatenate([c.severity for c in chunks])
    value = np.concatenate([c.value for c in chunks])
    order = np.lexsort((subject, rule, ts))
    rule, subject = rule[order], subject[order]
    areas = {ar.index: ar for ar in area_rules}
    is_area = np.isin(rule, list(areas)) if areas else np.zeros(len(rule), dtype=bool)
    slot = np.where(is_area, 0, subject)
    columns: list[list[str | None]] = [
        c[slot].tolist() if len(table) else [None] * len(slot)
        for c in (table.device_id, table.metric, table.district, table.grid)]
    device_id, metric, district, grid = columns
    subject_col = list(device_id)
    for i in np.flatnonzero(is_area).tolist():
        subject_col[i], district[i], grid[i] = areas[int(rule[i])].describe(int(subject[i]))
        device_id[i] = metric[i] = None
    rule_ids = np.array([r.id for r in rules], dtype=object)
    categories = np.array([r.category for r in rules], dtype=object)
    return detections_from_columns(
        rule_ids[rule].tolist(), categories[rule].tolist(), subject_col,
        _STATES[change[order]].tolist(), _SEVERITIES[severity[order]].tolist(),
        ts[order].tolist(), value[order].tolist(), device_id, metric, district, grid)
