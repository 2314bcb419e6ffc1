"""Backtest: replay stored readings through a fresh engine to see what a rule set would raise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import Detection
from rules.engine import Engine
from rules.model import Rule


def backtest(
    rules: Sequence[Rule],
    registry: Registry,
    history: ReadingBatch | Iterable[ReadingBatch],
    tick_every_ms: int,
    *,
    end_ms: int | None = None,
    **engine_options: Any,
) -> list[Detection]:
    """Replay ``history`` in time order, ticking every ``tick_every_ms``; return all detections.

    Readings are cut into consecutive windows of ``tick_every_ms`` starting at the earliest
    reading; each window is evaluated with ``now`` at its end, as the live pipeline would at
    that tick rate. Ticks continue up to ``end_ms`` (when given) so that staleness and pending
    timers after the last reading show too.

    Args:
        rules: The rule set to try (enabled rules only are run, as live).
        registry: Devices and series slots the history's slots refer to.
        history: One batch or several, in any order.
        tick_every_ms: The tick period of the live pipeline being imitated.
        end_ms: End of the backtest range.
        **engine_options: Passed to `Engine` (detectors, attributes, utc_offset_h).

    Returns:
        The detections, in the order the engine raised them.

    Example:
        >>> from devices.catalogue import load_catalogue
        >>> from devices.registry import Device, Registry
        >>> from rules.loader import load_rules
        >>> reg = Registry.build(load_catalogue(), [Device("g1", "gas", "d", 0.0, 0.0)])
        >>> rules = load_rules("- {id: gas, category: safety, when: value >= 20, severity: orange}")
        >>> h = ReadingBatch.from_columns([0, 0], [0, 30_000], [5.0, 25.0])
        >>> [(d.state.value, d.ts_ms) for d in backtest(rules, reg, h, 60_000)]
        [('firing', 30000)]
    """
    if tick_every_ms <= 0:
        raise ValueError("tick_every_ms must be positive")
    batch = history if isinstance(history, ReadingBatch) else ReadingBatch.concat(list(history))
    batch = batch.take(np.argsort(batch.ts_ms, kind="stable"))
    engine = Engine(rules, registry, **engine_options)
    if len(batch) == 0:
        return []
    start = int(batch.ts_ms[0])
    last = max(int(batch.ts_ms[-1]), end_ms if end_ms is not None else start)
    edges = np.arange(start + tick_every_ms, last + tick_every_ms + 1, tick_every_ms)
    cuts = np.searchsorted(batch.ts_ms, edges, side="left")
    detections: list[Detection] = []
    lo = 0
    for edge, hi in zip(edges, cuts, strict=True):
        detections += engine.evaluate(batch.take(np.arange(lo, hi)), int(edge))
        lo = hi
    return detections
