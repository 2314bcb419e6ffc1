"""Runs the rule engine inside the platform: every stored batch, a periodic tick, hot reload.

The engine itself is pure; this shell reads the clock (`clock_ms`), owns the rule file and the
swap: a changed file (or a changed registry, with the devices' attributes for
``attr()``) is built into a complete new engine
(`Engine.rebuild`, which carries the state of unchanged rules and series over)
first, and only then replaces the running one. A rule file that fails to load
is reported and the running rules stay in force. Rules the rebuild started afresh
(changed or removed: `Engine.reset_rules`) are handed to `on_reset`, so their open
alerts can be closed before the new engine's detections arrive. Likewise devices that left
service (maintenance, retired: `Engine.left_service`) or are judged afresh (re-typed, moved:
`Engine.relocated`) are handed to `on_leave`, and so are, at `restore`, out-of-service devices
that still have open alerts.

Across restarts: `restore` (before ingest starts) applies the last checkpoint
(`urbanwatch.checkpoint`) where it still fits, then the newest stored reading of each series and
the open alerts; the time the platform was away counts as no device's silence (`seed_downtime`),
so a restart after a long stop does not find the whole city offline. `run` saves a checkpoint
every `checkpoint_s`.

Off the event loop: the engine is touched only in one judging thread (numpy releases the GIL
for most of the work), one call at a time, so a large batch, a tick at a million series, a
rebuild or a snapshot never stalls the API, the live stream or the MQTT keep-alives. Each call
and the hand-off of its detections hold `_turn`, so detections reach the sink in the order the
engine found them, and a reload's resets go ahead of the new engine's detections. A rebuild
swaps the engine in the judging thread, and nothing else keeps the old one: its memory goes as
soon as the new engine is in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from devices.batch import ReadingBatch
from devices.clock import now_ms
from devices.registry import DeviceStatus, Registry
from rules.detection import Detection
from rules.engine.engine import Engine
from rules.engine.restore import (
    OpenAlert,
    SnapshotError,
    seed_downtime,
    seed_last_readings,
    seed_open_alerts,
)
from rules.engine.scoring import CITY_TIMEZONE
from rules.engine.snapshot import Snapshot
from rules.errors import RuleError
from rules.language.loader import load_default_pack, load_rules_file
from rules.language.model import Rule
from urbanwatch.checkpoint import ALIVE, last_alive, load_checkpoint, mark_alive, write_checkpoint
from urbanwatch.file_watch import FileWatch

log = logging.getLogger(__name__)
DetectionSink = Callable[[list[Detection], int], Awaitable[None]]
ResetSink = Callable[[tuple[str, ...], int], Awaitable[object]]  # (rule ids, now_ms)
LeaveSink = Callable[[tuple[str, ...], int], Awaitable[object]]  # (device ids, now_ms)
T = TypeVar("T")
ALIVE_S = 5.0  # how often the alive mark is rewritten: a restart's downtime is known to this


class Judge:
    """Feeds the engine and hands its detections to `sink`."""

    def __init__(
        self, registry: Callable[[], Registry], sink: DetectionSink, *,
        rules_path: Path | None = None, tick_s: float = 1.0, timezone: str = CITY_TIMEZONE,
        on_reset: ResetSink | None = None, on_leave: LeaveSink | None = None,
        clock_ms: Callable[[], int] = now_ms, checkpoint_path: Path | None = None,
        checkpoint_s: float = 60.0, observe: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        self._registry, self._sink, self._on_reset = registry, sink, on_reset
        self._on_leave = on_leave
        self._clock_ms = clock_ms
        self._observe = observe  # a clock following the readings: told of each judged batch
        self.rules_path, self.tick_s, self.timezone = rules_path, tick_s, timezone
        self._rules_file = FileWatch(rules_path)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judging")
        self._turn = asyncio.Lock()  # one engine call, and the hand-off of what it found
        self.rules = self._load_rules()
        self.engine = self._fresh_engine()
        self.detections: Counter[str] = Counter()  # by detection state
        self.reloads = 0
        self.reload_errors = 0
        self.last_evaluate_s = 0.0
        self.evaluations, self.evaluate_s_total = 0, 0.0  # /metrics
        self.ticks, self.tick_s_total = 0, 0.0
        self.checkpoint_path, self.checkpoint_s = checkpoint_path, checkpoint_s
        self.alive_path = None if checkpoint_path is None else checkpoint_path.with_name(ALIVE)
        self.checkpoints, self.checkpoint_bytes, self.last_checkpoint_s = 0, 0, 0.0

    async def on_batch(self, batch: ReadingBatch, now_ms: int,
                       faults: ReadingBatch | None = None) -> None:
        """Judge a stored batch and the out-of-range readings (`faults`) refused with it.

        With `observe` (a clock following the readings), the batch's stamps move the clock
        once the batch has its turn, and it is judged at the clock's new `now`: a tick waiting
        for the turn ahead of it still sees the time of the readings judged so far, so no
        device looks silent for readings that are only waiting to be judged.
        """
        async with self._turn:
            if self._observe is not None and len(batch):
                self._observe(batch.ts_ms)
                now_ms = self._clock_ms()
            await self._follow_registry(now_ms)
            started = time.perf_counter()
            found = await self._judging(self.engine.evaluate, batch, now_ms, faults)
            self.last_evaluate_s = time.perf_counter() - started
            self.evaluations += 1
            self.evaluate_s_total += self.last_evaluate_s
            await self._emit(found, now_ms)

    def close(self) -> None:
        """Stop the judging thread once the call it is running (if any) is done."""
        self._thread.shutdown(wait=True)

    async def _judging(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in the judging thread, the only thread that touches the engine."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args))

    async def restore(self, last: ReadingBatch, open_alerts: list[OpenAlert]) -> None:
        """Before ingest: the checkpoint where it fits, then ``last`` stored readings (one per
        slot) where newer, then ``open_alerts`` where the engine holds their subject inactive."""
        saved = None
        if self.checkpoint_path is not None:
            saved = await asyncio.to_thread(load_checkpoint, self.checkpoint_path)
        async with self._turn:
            await self._judging(self._restore, saved, last, open_alerts)
        if self.alive_path is not None:
            await asyncio.to_thread(self._mark_alive, self.alive_path, self._clock_ms(),
                                    list(self.engine.ctx.series.downtimes))
        away = {str(a.device_id) for a in open_alerts if _out_of_service(self.engine.registry, a)}
        await self._left_service(tuple(sorted(away)), self._clock_ms())  # e.g. while stopped

    def _restore(self, saved: tuple[Snapshot, int] | None, last: ReadingBatch,
                 open_alerts: list[OpenAlert]) -> None:
        saved_ms = None
        if saved is not None:
            snap, saved_ms = saved
            try:
                report = self.engine.restore(snap)
            except (SnapshotError, IndexError, ValueError) as exc:
                self.engine = self._fresh_engine()  # never a half-applied checkpoint
                log.warning("checkpoint %s does not fit (%s): ignored, rebuilt from stored "
                            "readings and open alerts", self.checkpoint_path, exc)
            else:
                log.info("checkpoint of %d s ago restored: %d series, %d rules, detectors %s; "
                         "fresh: rules %s, detectors %s, %d series no longer registered",
                         (self._clock_ms() - saved_ms) // 1000, report.series, len(report.rules),
                         report.detectors, report.rules_fresh, report.detectors_fresh,
                         report.unplaced_series)
        newer = seed_last_readings(self.engine, last.slot, last.ts_ms, last.value)
        seeded = seed_open_alerts(self.engine, open_alerts)
        away = ""
        alive = None if self.alive_path is None else last_alive(self.alive_path)
        marks = [m for m in (saved_ms, alive and alive.ms) if m is not None]
        if marks:  # following the readings, listening again from the first judged batch
            resumed = None if self._observe is not None else self._clock_ms()
            seed_downtime(self.engine, max(marks), resumed, alive.downtimes if alive else ())
            away = "" if resumed is None else \
                f"; the {max(0, resumed - max(marks)) // 1000} s away are no device's silence"
        log.info("engine start: %d series' last readings from the store, %d of %d open alerts "
                 "seeded%s", newer, seeded, len(open_alerts), away)

    @staticmethod
    def _mark_alive(path: Path, now_ms: int,
                    downtimes: list[tuple[int, int | None]]) -> None:
        try:
            mark_alive(path, now_ms, downtimes)
        except OSError as exc:  # a restart then counts the time since the last mark as silence
            log.error("alive mark %s not written: %s", path, exc)

    async def checkpoint(self) -> None:
        """Save the engine's state now (snapshot here, file written in a worker thread)."""
        if self.checkpoint_path is None:
            return
        started = time.perf_counter()
        async with self._turn:
            snap = await self._judging(self.engine.snapshot)
        self.checkpoint_bytes = await asyncio.to_thread(
            write_checkpoint, self.checkpoint_path, snap, self._clock_ms())
        self.checkpoints += 1
        self.last_checkpoint_s = time.perf_counter() - started

    async def run(self, stop: asyncio.Event) -> None:
        """Tick (and look for a changed rule file) every `tick_s` until `stop`; checkpoint
        every `checkpoint_s` (the platform saves the last one once ingest has stopped)."""
        next_checkpoint = time.monotonic() + self.checkpoint_s
        next_alive = time.monotonic() + ALIVE_S  # marked at `restore`
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)
            await self.reload()
            async with self._turn:
                now_ms = self._clock_ms()
                await self._follow_registry(now_ms)
                started = time.perf_counter()
                found = await self._judging(self.engine.tick, now_ms)
                self.ticks += 1
                self.tick_s_total += time.perf_counter() - started
                await self._emit(found, now_ms)
            if self.alive_path is not None and time.monotonic() >= next_alive:
                await asyncio.to_thread(self._mark_alive, self.alive_path, now_ms,
                                        list(self.engine.ctx.series.downtimes))
                next_alive = time.monotonic() + ALIVE_S
            if time.monotonic() >= next_checkpoint:
                await self.checkpoint_logged()
                next_checkpoint = time.monotonic() + self.checkpoint_s

    async def checkpoint_logged(self) -> None:
        """`checkpoint`, logging (not raising) a failure to write it."""
        try:
            await self.checkpoint()
        except OSError as exc:  # the previous checkpoint stays; learning continues in memory
            log.error("engine checkpoint %s not written: %s", self.checkpoint_path, exc)

    async def reload(self) -> bool:
        """`reload_if_changed` in the judging thread, then hand the rules it reset to `on_reset`.

        The turn is held from the swap to the call, so the reset is queued ahead of any
        detection of the new engine.
        """
        async with self._turn:
            if not await self._judging(self.reload_if_changed):
                return False
            reset = self.engine.reset_rules
            if reset and self._on_reset is not None:
                await self._on_reset(reset, self._clock_ms())
            await self._engine_left(self._clock_ms())
        return True

    def reload_if_changed(self) -> bool:
        """Swap in the rule file's new contents if it changed and is valid (in the caller's
        thread: `reload` runs it in the judging thread)."""
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

    async def _follow_registry(self, now_ms: int) -> None:
        """Rebuild the engine for a changed registry (holding the turn, in the judging thread)."""
        registry = self._registry()
        if registry is not self.engine.registry:
            await self._judging(self._take_registry, registry, now_ms)
            await self._engine_left(now_ms)

    def _take_registry(self, registry: Registry, now_ms: int) -> None:
        self.engine = self.engine.rebuild(registry=registry, attributes=registry.attributes(),
                                          now_ms=now_ms)

    async def _engine_left(self, now_ms: int) -> None:
        """Hand over the devices a rebuilt engine stopped judging or judges afresh."""
        await self._left_service(self.engine.left_service + self.engine.relocated, now_ms)

    async def _left_service(self, device_ids: tuple[str, ...], now_ms: int) -> None:
        if device_ids and self._on_leave is not None:
            await self._on_leave(device_ids, now_ms)

    def _fresh_engine(self) -> Engine:
        devices = self._registry()
        return Engine(self.rules, devices, attributes=devices.attributes(),
                      timezone=self.timezone)

    def _load_rules(self) -> list[Rule]:
        if self.rules_path is None:
            return load_default_pack()
        return load_rules_file(self.rules_path)


def _out_of_service(registry: Registry, alert: OpenAlert) -> bool:
    device = registry.get(alert.device_id) if alert.device_id else None
    return device is not None and device.status is not DeviceStatus.ACTIVE
