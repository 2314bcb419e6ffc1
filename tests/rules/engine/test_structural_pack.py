"""The default pack's structural rules against the simulated city's sensors and their allowables.

The readings go through `Judge`, as in `urbanwatch serve`: the engine reads `attr()` from the
registry built from the city's devices.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Registry
from rules.detection import Detection, DetectionState, Severity
from simulators.city import build_city
from simulators.signals import values
from urbanwatch.judging import Judge

T0_MS = 1_795_000_000_000
M = 60_000
CITY = build_city(200, seed=1)
STRUCTURAL = [d for d in CITY.devices if d.type == "structural"]
RULE_OF = {"tilt_deg": ("structure-tilt", "tilt_allow_deg"),
           "strain_ue": ("structure-strain", "strain_allow_ue")}


class Collect:
    def __init__(self) -> None:
        self.seen: list[Detection] = []

    async def __call__(self, found: list[Detection], now_ms: int) -> None:
        self.seen.extend(d for d in found if d.rule_id.startswith("structure-"))


def _judge() -> tuple[Judge, Registry, Collect]:
    registry, sink = Registry.build(load_catalogue(), CITY.devices), Collect()
    return Judge(lambda: registry, sink), registry, sink


async def test_a_day_of_simulated_structural_readings_raises_nothing() -> None:
    judge, registry, sink = _judge()
    index = {d.id: i for i, d in enumerate(CITY.devices)}
    ts = T0_MS + np.arange(0, 24 * 60) * M
    for metric in RULE_OF:
        slots = np.array([registry.slot(d.id, metric) for d in STRUCTURAL], dtype=np.int64)
        dev = np.array([index[d.id] for d in STRUCTURAL])
        got = values(CITY, np.tile(dev, len(ts)), np.repeat(ts, len(dev)))[metric]
        batch = ReadingBatch.from_columns(np.tile(slots, len(ts)), np.repeat(ts, len(dev)), got)
        await judge.on_batch(batch, int(ts[-1]))
    assert len(STRUCTURAL) >= 10 and sink.seen == []


@pytest.mark.parametrize("metric", list(RULE_OF))
@pytest.mark.parametrize(("share", "severity"), [
    (0.7, Severity.YELLOW), (-0.7, Severity.YELLOW), (0.9, Severity.ORANGE),
    (1.0, Severity.RED), (-1.3, Severity.RED),
])
async def test_a_held_share_of_the_allowable_raises_its_level(
    metric: str, share: float, severity: Severity
) -> None:
    judge, registry, sink = _judge()
    rule_id, allowable = RULE_OF[metric]
    device = STRUCTURAL[-1]
    value = share * device.attributes[allowable]
    slot = registry.slot(device.id, metric)
    ts = [T0_MS + k * M for k in range(7)]  # held past the rules' `for: 5m`
    await judge.on_batch(ReadingBatch.from_columns([slot] * 7, ts, [value] * 7), ts[-1])
    fired = [(d.rule_id, d.device_id, d.severity, d.value)
             for d in sink.seen if d.state == DetectionState.FIRING]
    assert fired == [(rule_id, device.id, severity, value)]


async def test_a_share_below_60_percent_raises_nothing() -> None:
    judge, registry, sink = _judge()
    device = STRUCTURAL[0]
    slot = registry.slot(device.id, "tilt_deg")
    value = 0.55 * device.attributes["tilt_allow_deg"]
    ts = [T0_MS + k * M for k in range(7)]
    await judge.on_batch(ReadingBatch.from_columns([slot] * 7, ts, [value] * 7), ts[-1])
    assert sink.seen == []
