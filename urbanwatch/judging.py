"""Runs the rule engine inside the platform: every stored batch, a periodic tick, hot reload.

The engine itself is pure; this shell reads the clock (`clock_ms`), owns the rule file and the
swap: a changed file (or a changed registry, with the devices' attributes for
``attr()``) is built into a complete new engine
(`Engine.rebuild`, which carries the state of unchanged rules and series over)
first, and only then replaces the running one. A rule file that fails to load
is reported and the running rules stay in force. Rules the rebuild started afresh
(changed or removed: `Engine.reset_rules`) are handed to `on_reset`, so their open
alerts can be closed before the new engine's detections arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from devices.batch import ReadingBatch
from devices.clock import now_ms
from devices.registry import Registry
from rules.detection import Detection
from rules.engine.engine import Engine
from rules.errors import RuleError
from rules.language.loader import load_default_pack, load_rules_file
from rules.language.model import Rule
from urbanwatch.file_watch import FileWatch

log = logging.getLogger(__name__)
DetectionSink = Callable[[list[Detection], int], Awaitable[None]]
ResetSink = Callable[[tuple[str, ...], int], Awaitable[object]]  # (rule ids, now_ms)


class Judge:
    """Feeds the engine and hands its detections to `sink`."""

    def __init__(
        self, registry: Callable[[], Registry], sink: DetectionSink, *,
        rules_path: Path | None = None, tick_s: float = 1.0, utc_offset_h: float = 8.0,
        on_reset: ResetSink | None = None, clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._registry, self._sink, self._on_reset = registry, sink, on_reset
        self._clock_ms = clock_ms
        self.rules_path, self.tick_s, self.utc_offset_h = rules_path, tick_s, utc_offset_h
        self._rules_file = FileWatch(rules_path)
        self.rules = self._load_rules()
        devices = registry()
        self.engine = Engine(self.rules, devices, attributes=devices.attributes(),
                             utc_offset_h=utc_offset_h)
        self.detections: Counter[str] = Counter()  # by detection state
        self.reloads = 0
        self.reload_errors = 0
        self.last_evaluate_s = 0.0
        self.evaluations, self.evaluate_s_total = 0, 0.0  # /metrics
        self.ticks, self.tick_s_total = 0, 0.0

    async def on_batch(self, batch: ReadingBatch, now_ms: int,
                       faults: ReadingBatch | None = None) -> None:
        """Judge a stored batch and the out-of-range readings (`faults`) refused with it."""
        self._follow_registry(now_ms)
        started = time.perf_counter()
        found = self.engine.evaluate(batch, now_ms, faults)
        self.last_evaluate_s = time.perf_counter() - started
        self.evaluations += 1
        self.evaluate_s_total += self.last_evaluate_s
        await self._emit(found, now_ms)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick (and look for a changed rule file) every `tick_s` until `stop`."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)
            await self.reload()
            now_ms = self._clock_ms()
            self._follow_registry(now_ms)
            started = time.perf_counter()
            found = self.engine.tick(now_ms)
            self.ticks += 1
            self.tick_s_total += time.perf_counter() - started
            await self._emit(found, now_ms)

    async def reload(self) -> bool:
        """`reload_if_changed`, then hand the rules it reset to `on_reset`.

        Nothing is awaited between the swap and the call, so the reset is queued ahead of any
        detection of the new engine.
        """
        if not self.reload_if_changed():
            return False
        reset = self.engine.reset_rules
        if reset and self._on_reset is not None:
            await self._on_reset(reset, self._clock_ms())
        return True

    def reload_if_changed(self) -> bool:
        """Swap in the rule file's new contents if it changed and is valid."""
        if not self._rules_file.changed():
            return False
        try:
            rules = self._load_rules()
            registry = self._registry()
            engine = self.engine.rebuild(rules=rules, registry=registry,
                                         attributes=registry.attributes(), now_ms=self._clock_ms())
        except (RuleError, OSError) as exc:
            self.reload_errors += 1
            log.error("rule file %s not loaded, the previous rules stay: %s", self.rules_path, exc)
            return False
        self.rules, self.engine = rules, engine
        self.reloads += 1
        log.info("rules reloaded from %s: %d rules", self.rules_path, len(rules))
        return True

    async def _emit(self, found: list[Detection], now_ms: int) -> None:
        if found:
            self.detections.update(str(d.state) for d in found)
            await self._sink(found, now_ms)

    def _follow_registry(self, now_ms: int) -> None:
        registry = self._registry()
        if registry is not self.engine.registry:
            self.engine = self.engine.rebuild(registry=registry, attributes=registry.attributes(),
                                              now_ms=now_ms)

    def _load_rules(self) -> list[Rule]:
        if self.rules_path is None:
            return load_default_pack()
        return load_rules_file(self.rules_path)

