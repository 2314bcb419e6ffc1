"""backtest_range against a real influxd: stored history in, what rules would have raised out."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import TypeAdapter

from api.backtesting import BacktestEvent, BacktestReport, backtest_range
from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.lineprotocol import LineEncoder
from rules.language.loader import load_default_pack, load_rules

T0 = (int(time.time()) // 3600 - 48) * 3_600_000  # two days ago: inside the 30-day retention
MIN = 60_000
GAUGE = {"warning_level": 3.0, "guaranteed_level": 4.0, "historical_max_level": 5.0}


def city() -> Registry:
    return Registry.build(load_catalogue(), [
        Device("wl-1", "water_level", "d1", 0.0, 0.0, grid="g-0-0"),
        Device("wl-2", "water_level", "d1", 0.0, 0.0, grid="g-0-0"),
        Device("gas-1", "gas", "d1", 0.0, 0.0, grid="g-0-0"),
    ])


def water_level_rule() -> list:
    return [r for r in load_default_pack() if r.id == "water-level"]


async def store(influx: InfluxClient, registry: Registry, batch: ReadingBatch) -> None:
    lines = LineEncoder(registry).encode(batch)
    await influx.write(lines.chunk(0, len(lines)))


async def store_flood(influx: InfluxClient, registry: Registry) -> None:
    """wl-1: 2.0 m for 30 min, 3.1 m (above warning) for 10 min, then 2.0 m; wl-2 and the gas
    detector stay quiet (the gas one above its own threshold, but no rule here reads it)."""
    k = np.arange(60)
    wl1 = np.where((k >= 30) & (k < 40), 3.1, 2.0)
    batch = ReadingBatch.concat([
        ReadingBatch.from_columns(np.full(60, registry.slot("wl-1", "level_m")), T0 + k * MIN, wl1),
        ReadingBatch.from_columns(np.full(60, registry.slot("wl-2", "level_m")), T0 + k * MIN,
                                  np.full(60, 1.0)),
        ReadingBatch.from_columns(np.full(60, registry.slot("gas-1", "lel_pct")), T0 + k * MIN,
                                  np.full(60, 60.0)),
    ])
    await store(influx, registry, batch)


@pytest.mark.parametrize("chunk_ms", [7 * MIN, 24 * 60 * MIN])
async def test_a_level_crossing_the_warning_is_raised_when_it_happened(
    influx_db: InfluxClient, chunk_ms: int
) -> None:
    registry = city()
    await store_flood(influx_db, registry)
    report = await backtest_range(influx_db, registry, water_level_rule(), T0, T0 + 60 * MIN,
                                  attributes={"wl-1": GAUGE, "wl-2": GAUGE}, chunk_ms=chunk_ms)
    assert (report.readings, report.series) == (120, 2)  # both gauges, not the gas detector
    [rule] = report.rules
    assert rule.rule_id == "water-level"
    assert rule.raised == [BacktestEvent(T0 + 30 * MIN, "wl-1", "yellow", 3.1, "wl-1", "level_m")]
    assert rule.cleared == [BacktestEvent(T0 + 40 * MIN, "wl-1", "yellow", 2.0, "wl-1", "level_m")]


async def test_only_the_range_is_replayed(influx_db: InfluxClient) -> None:
    registry = city()
    await store_flood(influx_db, registry)
    report = await backtest_range(influx_db, registry, water_level_rule(), T0 + 35 * MIN,
                                  T0 + 38 * MIN, attributes={"wl-1": GAUGE, "wl-2": GAUGE})
    assert report.readings == 6  # minutes 35, 36, 37 of both gauges
    assert [(e.ts_ms, e.severity) for e in report.rules[0].raised] == [(T0 + 35 * MIN, "yellow")]
    assert report.rules[0].cleared == []


async def test_stale_rules_tick_through_the_range(influx_db: InfluxClient) -> None:
    registry = city()
    await store(influx_db, registry, ReadingBatch.from_columns(
        [registry.slot("gas-1", "lel_pct")] * 2, [T0, T0 + MIN], [1.0, 1.0]))
    rules = load_rules("- {id: gas-quiet, category: device, match: {device_type: gas},"
                       " when: stale(5m), severity: blue}")
    report = await backtest_range(influx_db, registry, rules, T0, T0 + 30 * MIN)
    assert [(e.ts_ms, e.subject, e.severity) for e in report.rules[0].raised] == [
        (T0 + 6 * MIN, "gas-1", "blue")]


async def test_a_range_without_data_raises_nothing(influx_db: InfluxClient) -> None:
    registry = city()
    await store_flood(influx_db, registry)
    rules = load_default_pack()
    report = await backtest_range(influx_db, registry, rules, T0 - 600 * MIN, T0 - 60 * MIN,
                                  chunk_ms=120 * MIN)
    assert report.readings == 0
    assert [r.rule_id for r in report.rules] == [r.id for r in rules if r.enabled]
    assert all(r.raised == [] and r.cleared == [] for r in report.rules)


@pytest.mark.parametrize("end", [T0, T0 - 1])
async def test_an_empty_or_reversed_range_is_refused(influx_db: InfluxClient, end: int) -> None:
    with pytest.raises(ValueError, match=r"end_ms \(\d+\) must be after start_ms"):
        await backtest_range(influx_db, city(), water_level_rule(), T0, end)


async def test_the_report_serialises_to_json(influx_db: InfluxClient) -> None:
    registry = city()
    await store_flood(influx_db, registry)
    report = await backtest_range(influx_db, registry, water_level_rule(), T0, T0 + 60 * MIN,
                                  attributes={"wl-1": GAUGE, "wl-2": GAUGE})
    adapter = TypeAdapter(BacktestReport)
    data = adapter.dump_python(report, mode="json")
    assert data["rules"][0]["raised"][0] == {
        "ts_ms": T0 + 30 * MIN, "subject": "wl-1", "severity": "yellow", "value": 3.1,
        "device_id": "wl-1", "metric": "level_m"}
    assert adapter.validate_json(adapter.dump_json(report)) == report
