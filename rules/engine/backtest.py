"""Backtest: replay stored readings through a fresh engine to see what a rule set would raise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import Detection
from rules.engine.engine import Engine
from rules.language.model import Rule


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
    that tick rate (`Replay` does the same with the history fed in chunks). Ticks continue up
    to ``end_ms`` (when given) so that staleness and pending timers after the last reading show
    too.

    Args:
        rules: The rule set to try (enabled rules only are run, as live).
        registry: Devices and series slots the history's slots refer to.
        history: One batch or several, in any order.
        tick_every_ms: The tick period of the live pipeline being imitated.
        end_ms: End of the backtest range.
        **engine_options: Passed to `Engine` (detectors, attributes, timezone).

    Returns:
        The detections, in the order the engine raised them.

    Example:
        >>> from devices.catalogue import load_catalogue
        >>> from devices.registry import Device, Registry
        >>> from rules.language.loader import load_rules
        >>> reg = Registry.build(load_catalogue(), [Device("g1", "gas", "d", 0.0, 0.0)])
        >>> rules = load_rules("- {id: gas, category: safety, when: value >= 20, severity: orange}")
        >>> h = ReadingBatch.from_columns([0, 0], [0, 30_000], [5.0, 25.0])
        >>> [(d.state.value, d.ts_ms) for d in backtest(rules, reg, h, 60_000)]
        [('firing', 30000)]
    """
    replay = Replay(rules, registry, tick_every_ms, **engine_options)
    batch = history if isinstance(history, ReadingBatch) else ReadingBatch.concat(list(history))
    replay.feed(batch)
    return replay.finish(end_ms)


class Replay:
    """A backtest fed in time-ordered chunks, so a long history never has to be held at once.

    Readings are cut into consecutive windows of ``tick_every_ms`` starting at the earliest
    reading; each window is evaluated with ``now`` at its end. A window is evaluated as soon as a
    fed chunk holds a reading at or past its end; the rest wait for the next chunk or `finish`.

    Args:
        rules: The rule set to try.
        registry: Devices and series slots the readings' slots refer to.
        tick_every_ms: The tick period of the live pipeline being imitated.
        **engine_options: Passed to `Engine` (detectors, attributes, timezone).
    """

    def __init__(self, rules: Sequence[Rule], registry: Registry, tick_every_ms: int,
                 **engine_options: Any) -> None:
        if tick_every_ms <= 0:
            raise ValueError("tick_every_ms must be positive")
        self.engine = Engine(rules, registry, **engine_options)
        self.tick_every_ms = tick_every_ms
        self.edge: int | None = None  # end of the window being filled
        self.held = ReadingBatch.empty()
        self.newest_ms: int | None = None
        self.detections: list[Detection] = []

    def feed(self, chunk: ReadingBatch) -> None:
        """Take readings in any order within the chunk, none older than an earlier chunk's newest.

        Raises:
            ValueError: the chunk holds a reading from a window already evaluated.
        """
        if len(chunk) == 0:
            return
        chunk = chunk.take(np.argsort(chunk.ts_ms, kind="stable"))
        if self.edge is None:
            self.edge = int(chunk.ts_ms[0]) + self.tick_every_ms
        elif int(chunk.ts_ms[0]) < self.edge - self.tick_every_ms:
            raise ValueError("chunks must be fed in time order")
        self.held = ReadingBatch.concat([self.held, chunk])
        self.newest_ms = int(chunk.ts_ms[-1])
        self._run_until(self.newest_ms)

    def finish(self, end_ms: int | None = None) -> list[Detection]:
        """Evaluate what is held and tick on up to ``end_ms``; return every detection, in order."""
        if self.newest_ms is not None:
            last = max(self.newest_ms, end_ms if end_ms is not None else self.newest_ms)
            self._run_until(last + self.tick_every_ms)
        return self.detections

    def _run_until(self, limit_ms: int) -> None:
        """Evaluate every window whose end is at or before ``limit_ms``."""
        assert self.edge is not None
        while self.edge <= limit_ms:
            cut = int(np.searchsorted(self.held.ts_ms, self.edge, side="left"))
            window, self.held = self.held.take(slice(0, cut)), self.held.take(slice(cut, None))
            self.detections += self.engine.evaluate(window, self.edge)
            self.edge += self.tick_every_ms
