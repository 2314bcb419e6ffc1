"""What a rule set needs from the registry, shared by the engine and its test oracle.

Which series each rule matches, how many readings its windows keep, which areas a count_in rule
judges and which grid cells neighbour each other. Both implementations take these answers from
here so that they differ only in how they evaluate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from devices.registry import DeviceStatus, Registry
from rules.language import ast
from rules.language.model import Rule

RING_CAP_MAX = 512  # readings kept per (rule, series) for windows; a longer window is truncated
_CELL = re.compile(r"^(?P<prefix>.*)-(?P<row>-?\d+)-(?P<col>-?\d+)$")


@dataclass(frozen=True)
class SlotTable:
    """The registry's per-slot attributes as columns (object arrays), read once per build."""

    device_id: np.ndarray
    type: np.ndarray
    metric: np.ndarray
    district: np.ndarray
    grid: np.ndarray
    out_of_service: np.ndarray  # in maintenance or retired: no rule judges these series
    interval_ms: dict[str, float]

    @classmethod
    def of(cls, registry: Registry) -> SlotTable:
        col = registry.slot_column
        intervals = {n: t.report_interval_s * 1000 for n, t in registry.catalogue.items()}
        if registry.n_series == 0:
            empty = np.array([], dtype=object)
            return cls(empty, empty, empty, empty, empty, np.array([], dtype=bool), intervals)
        status = col("status")
        return cls(col("id"), col("type"), registry.metric_column(), col("district"), col("grid"),
                   status != DeviceStatus.ACTIVE, intervals)

    def __len__(self) -> int:
        return len(self.device_id)


def matched_slots(rule: Rule, table: SlotTable) -> np.ndarray:
    """Sorted slots of the series ``rule`` judges (of active devices: not in maintenance, not
    retired, so a device in maintenance raises neither value nor offline alerts)."""
    m = rule.match
    keep = ~table.out_of_service
    for values, column in ((m.device_type, table.type), (m.metric, table.metric),
                           (m.district, table.district), (m.grid, table.grid),
                           (m.device_ids, table.device_id)):
        if values is not None:
            keep &= np.isin(column, list(values))
    return np.flatnonzero(keep).astype(np.int64)


def ring_capacity(rule: Rule, table: SlotTable, slots: np.ndarray) -> int:
    """Readings a window of this rule can hold: its longest window at the fastest report rate.

    Readings that arrive faster than their type's ``report_interval_s`` may overflow it; the
    window then covers the newest ``ring_capacity`` readings only (in both implementations).
    """
    window_ms = rule.max_window_ms
    if window_ms == 0 or len(slots) == 0:
        return 0
    interval_ms = min(table.interval_ms[t] for t in set(table.type[slots]))
    return int(min(RING_CAP_MAX, max(2, math.ceil(window_ms / interval_ms) + 2)))


def area_of(scope: str, table: SlotTable, slot: int) -> str:
    """The subject key of ``slot`` for a count_in scope: its grid cell or its district."""
    return str(table.district[slot] if scope == "district" else table.grid[slot])


def subject_of(scope: str, area: str) -> str:
    return f"district:{area}" if scope == "district" else f"grid:{area}"


def neighbour_cells(cell: str) -> list[str]:
    """The cell and its 8 neighbours, for cells named ``<prefix>-<row>-<col>`` (else itself)."""
    m = _CELL.match(cell)
    if m is None:
        return [cell]
    p, r, c = m["prefix"], int(m["row"]), int(m["col"])
    return [f"{p}-{r + dr}-{c + dc}" for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


def detector_names(rules: list[Rule]) -> list[str]:
    """Detector names used by ``anomaly()`` in any rule, in order of first use."""
    names = [n.detector for r in rules for n in r.nodes() if isinstance(n, ast.Anomaly)]
    return list(dict.fromkeys(names))


def attribute_column(
    name: str, table: SlotTable, attributes: Mapping[str, Mapping[str, float]]
) -> np.ndarray:
    """``attr(name)`` per slot: the device's attribute, NaN where it has none."""
    column = np.full(len(table), np.nan)
    for slot, device_id in enumerate(table.device_id):
        value = attributes.get(device_id, {}).get(name)
        if value is not None:
            column[slot] = float(value)
    return column
