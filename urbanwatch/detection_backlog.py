"""Detections the alert store has not taken yet, kept in order and retried until it does.

The engine has already moved its rule state when it hands over a detection, so judging the
same readings again would not detect it again: if storing the alerts fails (SQLite busy beyond
its timeout, a PostgreSQL failover, a constraint error), the detections are kept here and
offered again, oldest first, before anything newer (a raise must reach the store before its
clear). The backlog is bounded; when it is full the least severe, oldest detections are
dropped first, so a red one is the last to go, and each drop is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from rules.detection import Detection, Severity

log = logging.getLogger(__name__)
Store = Callable[[list[Detection], int], Awaitable[object]]  # (detections, now_ms)
MAX_DETECTIONS = 100_000


class DetectionBacklog:
    """Hands detections to `store` in order; what it refuses waits for the next `flush`."""

    def __init__(self, store: Store, *, max_detections: int = MAX_DETECTIONS) -> None:
        self._store = store
        self._max = max_detections
        self._held: deque[tuple[list[Detection], int]] = deque()
        self._lock = asyncio.Lock()
        self.size = 0  # detections held
        self.dropped = 0  # detections given up when the backlog was full
        self.failures = 0  # store attempts that failed
        self.failing = False  # since the last failure, nothing was stored

    async def put(self, found: list[Detection], now_ms: int) -> None:
        """Store `found` now, or hold it behind what is already held; never raises.

        While detections are held the store is known to be failing: `found` only joins the
        queue, and the next `flush` (the alert runner's tick) tries again, so the caller
        (ingest) is not held up by every attempt.
        """
        trying = not self._held
        self._held.append((found, now_ms))
        self.size += len(found)
        self._shed()
        if trying:
            await self.flush()

    async def flush(self) -> bool:
        """Offer the held detections, oldest first; True once none are left."""
        async with self._lock:
            while self._held:
                found, now_ms = self._held[0]
                try:
                    if found:
                        await self._store(found, now_ms)
                except Exception:
                    self.failures += 1
                    self.failing = True
                    log.exception("storing %d detections failed; %d held, retried later",
                                  len(found), self.size)
                    return False
                self.size -= len(self._held.popleft()[0])  # as shed since, if it was
                self.failing = False
            return True

    async def ready(self) -> bool:
        """The readiness probe: the alert store takes what it is given (nothing is held back
        by a failure)."""
        return not self.failing

    def _shed(self) -> None:
        for severity in Severity:
            if self.size <= self._max:
                return
            self._drop_below(severity + 1)

    def _drop_below(self, severity: int) -> None:
        """Drop detections less severe than `severity`, oldest first, until within bounds."""
        for index, (found, now_ms) in enumerate(self._held):
            if self.size <= self._max:
                break
            kept = [d for d in found if d.severity >= severity]
            lost = len(found) - len(kept)
            if lost:
                self._held[index] = (kept, now_ms)
                self.size -= lost
                self.dropped += lost
                log.error("alert store backlog full: dropped %d detections of severity %s or "
                          "lower", lost, Severity(severity - 1).name.lower())
