"""Backtest a rule set over stored history: read the range from InfluxDB, replay it, report.

The history is read in time chunks (`ingest.timeseries.readings.stored_readings`) and fed to
`rules.engine.backtest.Replay` chunk by chunk, so a long range is never held in memory at once. Only
the series the rules match are read. The replay itself (pure numpy, CPU-bound) runs in a worker
thread, so a long backtest does not stall the event loop that ingest and the API share.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from devices.registry import Registry
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.readings import stored_readings
from rules.detection import Detection, DetectionState
from rules.engine.backtest import Replay
from rules.engine.plan import SlotTable, matched_slots
from rules.engine.scoring import CITY_TIMEZONE
from rules.language.model import Rule


@dataclass(frozen=True)
class BacktestEvent:
    """One change a rule would have reported: when, on what subject, how severe."""

    ts_ms: int
    subject: str  # a device id, or grid:<cell> / district:<name> for count_in rules
    severity: str  # info, blue, yellow, orange, red
    value: float | None  # the reading (None where there is no single one)
    device_id: str | None = None
    metric: str | None = None


@dataclass(frozen=True)
class RuleBacktest:
    """What one rule would have raised (firing, including escalations) and cleared."""

    rule_id: str
    name: str
    raised: list[BacktestEvent] = field(default_factory=list)
    cleared: list[BacktestEvent] = field(default_factory=list)


@dataclass(frozen=True)
class BacktestReport:
    """The backtest of a rule set over ``[start_ms, end_ms)``: one entry per enabled rule."""

    start_ms: int
    end_ms: int
    readings: int  # stored readings replayed
    series: int  # series the rules match
    rules: list[RuleBacktest]


async def backtest_range(
    influx: InfluxClient,
    registry: Registry,
    rules: Sequence[Rule],
    start_ms: int,
    end_ms: int,
    *,
    timezone: str = CITY_TIMEZONE,
    tick_every_ms: int = 60_000,
    chunk_ms: int = 3_600_000,
    attributes: Mapping[str, Mapping[str, float]] | None = None,
) -> BacktestReport:
    """Replay the stored readings of ``[start_ms, end_ms)`` through a fresh engine.

    Args:
        influx: The database the pipeline stores readings in.
        registry: Devices and series slots; the rules are matched against it.
        rules: The rule set to try (disabled rules are left out, as live).
        start_ms: Start of the range (epoch ms, inclusive).
        end_ms: End of the range (epoch ms, exclusive); ticks run up to it.
        timezone: The city's IANA time zone, for ``hour()``.
        tick_every_ms: Tick period of the live pipeline being imitated.
        chunk_ms: Length of the time chunks the history is read in.
        attributes: Per-device numeric attributes for ``attr()``, by device id.

    Returns:
        Per enabled rule, the events it would have raised and cleared, oldest first.

    Raises:
        ValueError: ``end_ms <= start_ms``, or a non-positive ``tick_every_ms``/``chunk_ms``.
        InfluxError: InfluxDB failed or is unreachable.
    """
    if end_ms <= start_ms:
        raise ValueError(f"empty range: end_ms ({end_ms}) must be after start_ms ({start_ms})")
    if chunk_ms <= 0:
        raise ValueError("chunk_ms must be positive")
    replay = await asyncio.to_thread(Replay, rules, registry, tick_every_ms,
                                     attributes=attributes, timezone=timezone)
    slots = _matched(replay.engine.rules, replay.engine.table)
    readings = 0
    async for chunk in stored_readings(influx, registry, slots, start_ms, end_ms, chunk_ms):
        await asyncio.to_thread(replay.feed, chunk)
        readings += len(chunk)
    detections = await asyncio.to_thread(replay.finish, end_ms - 1)
    return BacktestReport(start_ms, end_ms, readings, len(slots),
                          _by_rule(replay.engine.rules, detections))


def _matched(rules: Sequence[Rule], table: SlotTable) -> np.ndarray:
    if len(table) == 0 or not rules:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([matched_slots(r, table) for r in rules]))


def _by_rule(rules: Sequence[Rule], detections: list[Detection]) -> list[RuleBacktest]:
    report = {r.id: RuleBacktest(r.id, r.name) for r in rules}
    for d in detections:
        if d.state == DetectionState.PENDING:
            continue
        event = BacktestEvent(d.ts_ms, d.subject, d.severity.name.lower(),
                              None if math.isnan(d.value) else d.value, d.device_id, d.metric)
        entry = report[d.rule_id]
        (entry.raised if d.state == DetectionState.FIRING else entry.cleared).append(event)
    return list(report.values())
