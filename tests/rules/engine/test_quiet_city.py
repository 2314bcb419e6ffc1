"""The simulator's ordinary city, judged by the shipped rule pack, raises nothing.

Pure and faster than real time: the city's readings go straight into the engine, with the
devices' attributes from the registry, as `urbanwatch serve` judges them. The one rule left out
is ``anomaly``: its combined detector flags a level never seen before while its history is
young (the first days of a series), and its severity is info, which never opens an incident.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import Detection, Severity
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack
from simulators.city import City, build_city
from simulators.signals import values

MONDAY_MS = 1731859200000  # 2024-11-18 00:00 in the city's time zone (UTC+8)
HOUR_MS = 3_600_000
CITY = build_city(150, seed=3)
LEARNING = "anomaly"


class Feed:
    """Every device of the city reporting every ``step_ms`` times its own ``every``."""

    def __init__(self, city: City, step_ms: int, every: np.ndarray) -> None:
        self.city, self.step_ms, self.every = city, step_ms, every
        self.phase = np.arange(len(city.devices)) % every  # devices do not all report at once
        self.registry = Registry.build(city.catalogue, city.devices)
        metrics = sorted({m for t in city.catalogue.values() for m in t.metrics})
        self.slot = {m: np.full(len(city.devices), -1) for m in metrics}
        for i, d in enumerate(city.devices):
            for m in city.catalogue[d.type].metrics:
                self.slot[m][i] = self.registry.slot(d.id, m)

    def batch(self, t0_ms: int, steps: range) -> ReadingBatch:
        k = np.array(steps)[:, None]
        due_k, dev = np.nonzero((k % self.every) == self.phase)
        ts = t0_ms + (k[due_k, 0] * self.step_ms)
        slots, times, got = [], [], []
        for metric, column in values(self.city, dev, ts).items():
            has = self.slot[metric][dev] >= 0
            slots.append(self.slot[metric][dev[has]])
            times.append(ts[has])
            got.append(column[has])
        return ReadingBatch.from_columns(np.concatenate(slots), np.concatenate(times),
                                         np.concatenate(got))


def _judge(feed: Feed, t0_ms: int, hours: float, batch_steps: int) -> list[Detection]:
    rules = load_default_pack()
    engine = Engine(rules, feed.registry, attributes=feed.registry.attributes())
    found: list[Detection] = []
    steps = int(hours * HOUR_MS // feed.step_ms)
    for start in range(0, steps, batch_steps):
        part = range(start, min(start + batch_steps, steps))
        found += engine.evaluate(feed.batch(t0_ms, part), t0_ms + part[-1] * feed.step_ms)
    return found


def _raised(found: list[Detection]) -> list[tuple[str, str, float, float]]:
    """(rule, subject, local hour, value) of every detection but the learning detector's."""
    return [(d.rule_id, d.subject, (d.ts_ms - MONDAY_MS) / HOUR_MS, d.value)
            for d in found if d.rule_id != LEARNING]


def test_the_rule_left_out_never_opens_an_incident() -> None:
    (rule,) = [r for r in load_default_pack() if r.id == LEARNING]
    assert rule.severity_ast.level == Severity.INFO


def test_a_day_and_a_night_at_the_report_intervals_raise_nothing() -> None:
    """From 04:00 on a Monday to 08:00 on Tuesday: both rush hours, 06:00 and 22:00 switches."""
    step_ms = 30_000
    every = np.array([CITY.catalogue[d.type].report_interval_s * 1000 // step_ms
                      for d in CITY.devices])
    found = _judge(Feed(CITY, step_ms, every), MONDAY_MS + 4 * HOUR_MS, 28, batch_steps=10)
    assert _raised(found) == []


@pytest.mark.parametrize("hour", [5.75, 17.75, 21.75], ids=["dawn", "rush", "dusk"])
def test_a_fresh_start_reporting_every_3_s_raises_nothing(hour: float) -> None:
    """The demo's pace: the first readings of every window, across a day/night switch."""
    feed = Feed(CITY, 3_000, np.ones(len(CITY.devices), dtype=np.int64))
    found = _judge(feed, MONDAY_MS + int(hour * HOUR_MS), 0.5, batch_steps=20)
    assert _raised(found) == []
