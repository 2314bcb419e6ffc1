"""The engine inside the platform: batches judged, ticks, and the rule file reloaded live."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.clock import ReadingClock
from devices.registry import Device, Registry
from rules.detection import Detection, DetectionState, Severity
from urbanwatch.judging import Judge

T0_MS = 1_795_000_000_000
RULE = """
- id: gas-high
  name: Gas high
  category: safety
  match: {{device_type: gas, metric: lel_pct}}
  when: value >= {threshold}
  severity: red
"""


class Collect:
    def __init__(self) -> None:
        self.seen: list[Detection] = []

    async def __call__(self, found: list[Detection], now_ms: int) -> None:
        self.seen.extend(found)


def _registry() -> Registry:
    return Registry.build(load_catalogue(), [Device("gas-1", "gas", "d1", 39.9, 116.4, "g-0-0")])


def _batch(registry: Registry, *values: float) -> ReadingBatch:
    slot = registry.slot("gas-1", "lel_pct")
    return ReadingBatch.from_columns(
        [slot] * len(values), [T0_MS + i * 1000 for i in range(len(values))], values
    )


async def test_a_stored_batch_raises_detections(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(threshold=50))
    registry, sink = _registry(), Collect()
    judge = Judge(lambda: registry, sink, rules_path=path)
    await judge.on_batch(_batch(registry, 10, 60), T0_MS + 2000)
    assert [(d.rule_id, d.state, d.severity, d.value) for d in sink.seen] == [
        ("gas-high", DetectionState.FIRING, Severity.RED, 60.0)]
    assert judge.detections["firing"] == 1


async def test_a_changed_rule_file_is_picked_up_and_a_broken_one_ignored(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(threshold=50))
    registry, sink = _registry(), Collect()
    judge = Judge(lambda: registry, sink, rules_path=path)
    assert not judge.reload_if_changed()

    path.write_text(RULE.format(threshold=5))
    assert judge.reload_if_changed() and judge.reloads == 1
    await judge.on_batch(_batch(registry, 10), T0_MS + 1000)
    assert [d.state for d in sink.seen] == [DetectionState.FIRING]

    path.write_text("- id: broken\n  when: value >>> 3\n")
    assert not judge.reload_if_changed()
    assert judge.reload_errors == 1 and judge.rules[0].id == "gas-high"


async def test_the_default_pack_runs_when_no_file_is_given() -> None:
    registry, sink = _registry(), Collect()
    judge = Judge(lambda: registry, sink)
    await judge.on_batch(_batch(registry, 1, 25, 55), T0_MS + 3000)
    fired = [(d.rule_id, d.severity) for d in sink.seen if d.state == DetectionState.FIRING]
    assert ("gas-lel", Severity.ORANGE) in fired and ("gas-lel", Severity.RED) in fired


async def test_a_grown_registry_is_followed() -> None:
    registry, sink = _registry(), Collect()
    judge = Judge(lambda: registry, sink)
    registry = registry.updated([Device("gas-2", "gas", "d1", 39.9, 116.4, "g-0-0")])
    slot = registry.slot("gas-2", "lel_pct")
    await judge.on_batch(ReadingBatch.from_columns([slot], [T0_MS], [70.0]), T0_MS)
    assert any(d.device_id == "gas-2" and d.severity == Severity.RED for d in sink.seen)


async def test_a_reload_hands_the_changed_and_removed_rules_to_on_reset(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    other = RULE.format(threshold=9).replace("gas-high", "gas-x")
    path.write_text(RULE.format(threshold=50) + other)
    registry, resets = _registry(), []

    async def on_reset(rule_ids: tuple[str, ...], now_ms: int) -> None:
        resets.append(rule_ids)

    judge = Judge(lambda: registry, Collect(), rules_path=path, on_reset=on_reset)
    assert not await judge.reload()
    path.write_text(RULE.format(threshold=60) + other)  # gas-high changed
    assert await judge.reload()
    path.write_text(RULE.format(threshold=60))  # gas-x removed
    assert await judge.reload()
    path.write_text("- id: broken\n  when: value >>> 3\n")
    assert not await judge.reload()
    assert resets == [("gas-high",), ("gas-x",)]


async def test_a_reload_lets_the_old_engine_go_as_soon_as_the_new_one_is_in(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(threshold=50))
    registry = _registry()
    judge = Judge(lambda: registry, Collect(), rules_path=path)
    await judge.on_batch(_batch(registry, 10, 60), T0_MS + 2000)
    old = weakref.ref(judge.engine)
    path.write_text(RULE.format(threshold=60))
    gc.disable()  # freed by reference counting, not left to the cycle collector
    try:
        assert await judge.reload()
        assert old() is None
    finally:
        gc.enable()
        judge.close()


def _gauge(warning: float, **more: float) -> Device:
    levels = {"warning_level": warning, "guaranteed_level": warning + 1,
              "historical_max_level": warning + 2} | more
    return Device("wl-1", "water_level", "d1", 39.9, 116.4, "g-0-0", attributes=levels)


def _levels(registry: Registry, start_ms: int, *values: float) -> ReadingBatch:
    slot = registry.slot("wl-1", "level_m")
    return ReadingBatch.from_columns(
        [slot] * len(values), [start_ms + i * 1000 for i in range(len(values))], values
    )


def _water_level(sink: Collect) -> list[tuple[DetectionState, Severity, float]]:
    return [(d.state, d.severity, d.value) for d in sink.seen if d.rule_id == "water-level"]


async def test_the_flood_rule_reads_the_gauge_levels_of_the_registry() -> None:
    registry, sink = Registry.build(load_catalogue(), [_gauge(3.0)]), Collect()
    judge = Judge(lambda: registry, sink)
    await judge.on_batch(_levels(registry, T0_MS, 2.5, 3.3), T0_MS + 2000)
    assert _water_level(sink) == [(DetectionState.FIRING, Severity.YELLOW, 3.3)]

    await judge.on_batch(_levels(registry, T0_MS + 2000, 4.2), T0_MS + 3000)
    assert _water_level(sink)[-1] == (DetectionState.FIRING, Severity.ORANGE, 4.2)

    registry = registry.updated([_gauge(5.0)])  # the gauge was re-surveyed: warning at 5 m
    await judge.on_batch(_levels(registry, T0_MS + 3000, 4.2), T0_MS + 4000)
    assert _water_level(sink)[-1] == (DetectionState.CLEARED, Severity.ORANGE, 4.2)

    registry = registry.updated([_gauge(3.0)])
    await judge.on_batch(_levels(registry, T0_MS + 4000, 5.5), T0_MS + 5000)
    assert _water_level(sink)[-1] == (DetectionState.FIRING, Severity.RED, 5.5)


async def test_a_gauge_without_levels_never_raises_the_flood_rule() -> None:
    bare = Device("wl-1", "water_level", "d1", 39.9, 116.4, "g-0-0")
    registry, sink = Registry.build(load_catalogue(), [bare]), Collect()
    judge = Judge(lambda: registry, sink)
    await judge.on_batch(_levels(registry, T0_MS, 1.0, 50.0), T0_MS + 2000)
    assert _water_level(sink) == []


async def test_the_injected_clock_stamps_resets(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(threshold=50))
    stamps: list[int] = []

    async def on_reset(rule_ids: tuple[str, ...], now_ms: int) -> None:
        stamps.append(now_ms)

    judge = Judge(_registry, Collect(), rules_path=path, on_reset=on_reset,
                  clock_ms=lambda: T0_MS)
    path.write_text(RULE.format(threshold=60))
    assert await judge.reload()
    assert stamps == [T0_MS]


async def test_following_the_readings_a_waiting_batch_moves_the_clock_only_on_its_turn(
    tmp_path: Path,
) -> None:
    """A tick that has the turn while a batch waits judges at the time of the readings judged
    so far: the waiting batch's ten minutes of readings must not make the device look silent."""
    path = tmp_path / "rules.yaml"
    path.write_text("- id: gas-offline\n  category: device\n"
                    "  match: {device_type: gas, metric: lel_pct}\n  when: stale(5m)\n")
    registry, sink, clock = _registry(), Collect(), ReadingClock()
    judge = Judge(lambda: registry, sink, rules_path=path, clock_ms=clock.now_ms,
                  observe=clock.observe_many)
    slot = registry.slot("gas-1", "lel_pct")
    await judge.on_batch(ReadingBatch.from_columns([slot], [T0_MS], [0.1]), 0)
    assert clock.now_ms() == T0_MS
    later = [T0_MS + k * 30_000 for k in range(1, 21)]  # every 30 s for 10 minutes
    async with judge._turn:  # a tick has the turn
        waiting = asyncio.create_task(
            judge.on_batch(ReadingBatch.from_columns([slot] * 20, later, [0.1] * 20), 0))
        await asyncio.sleep(0.05)  # the batch has arrived and waits for its turn
        tick_now = clock.now_ms()
        found = judge.engine.tick(tick_now)
    await waiting
    assert tick_now == T0_MS and found == []
    assert clock.now_ms() == T0_MS + 5 * 60_000  # judged: the clock moved to its median
    assert sink.seen == []
