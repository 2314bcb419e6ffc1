"""Detections the alert store has not taken yet, kept in order and retried until it does.

The engine has already moved its rule state when it hands over a detection, so judging the
same readings again would not detect it again: if storing the alerts fails (SQLite busy beyond
its timeout, a PostgreSQL failover, a constraint error), the detections are kept here and
offered again, oldest first, before anything newer (a raise must reach the store before its
clear). The backlog is bounded; when it is full the least severe, oldest detections are
dropped first, so a red one is the last to go, and each drop is logged and counted.

A detection the store refuses as data (a constraint or value it can never take, e.g. a value
that is not a number) would hold everything behind it for ever: when a batch fails that way,
its detections are offered one by one, and each one refused as data is logged whole, counted
(`rejected`) and set aside, so the others go on.

Held detections outlive the process: with a `DetectionJournal`, every change of what is held is
saved to it before `put` or `flush` returns (so before ingest acknowledges the readings), and
`load_journal` puts them back at start-up, ahead of anything new. A detection stored on the
first try never touches the file.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DataError, IntegrityError

from rules.detection import Detection, Severity
from urbanwatch.detection_journal import DetectionJournal

log = logging.getLogger(__name__)
Store = Callable[[list[Detection], int], Awaitable[object]]  # (detections, now_ms)
MAX_DETECTIONS = 100_000
REFUSED_AS_DATA = (IntegrityError, DataError)  # retrying the same detection cannot help


class DetectionBacklog:
    """Hands detections to `store` in order; what it refuses waits for the next `flush`."""

    def __init__(self, store: Store, *, max_detections: int = MAX_DETECTIONS,
                 journal: DetectionJournal | None = None) -> None:
        self._store = store
        self._max = max_detections
        self._journal = journal
        self._held: deque[tuple[list[Detection], int]] = deque()
        self._lock = asyncio.Lock()  # one store attempt at a time, in order
        self._saving = asyncio.Lock()  # one journal write at a time, of the newest state
        self._unsaved = False
        self.size = 0  # detections held
        self.dropped = 0  # detections given up when the backlog was full
        self.failures = 0  # store attempts that failed
        self.rejected = 0  # detections the store refused as data, set aside
        self.failing = False  # since the last failure, nothing was stored

    async def put(self, found: list[Detection], now_ms: int) -> None:
        """Store `found` now, or hold it behind what is already held; never raises.

        While detections are held the store is known to be failing: `found` only joins the
        queue (and the journal), and the next `flush` (the alert runner's tick) tries again, so
        the caller (ingest) is not held up by every attempt.
        """
        if not self._held:
            async with self._lock:
                if not self._held:
                    found = await self._offer(found, now_ms)
                    if not found:
                        return
        self._hold(found, now_ms)
        await self._save()

    async def flush(self) -> bool:
        """Offer the held detections, oldest first; True once none are left."""
        async with self._lock:
            while self._held:
                found, now_ms = self._held[0]
                rest = await self._offer(found, now_ms)
                self.size -= len(found) - len(rest)
                self._unsaved = True
                if rest:
                    self._held[0] = (rest, now_ms)
                    break
                self._held.popleft()
        await self._save()
        return not self._held

    def load_journal(self) -> int:
        """Put the journal's detections (held before a restart) ahead of anything held now;
        how many. They are stored by the next `flush`."""
        if self._journal is None:
            return 0
        saved = self._journal.load()
        self._held.extendleft(reversed(saved))
        count = sum(len(found) for found, _ in saved)
        self.size += count
        if count:
            log.warning("%d detections held when the platform stopped are stored first",
                        count)
        return count

    async def _offer(self, found: list[Detection], now_ms: int) -> list[Detection]:
        """Store `found`; what is left to hold (all of it while the store fails)."""
        try:
            if found:
                await self._store(found, now_ms)
        except REFUSED_AS_DATA:
            return await self._one_by_one(found, now_ms)
        except Exception:
            self._failed(len(found))
            return found
        self.failing = False
        return []

    async def _one_by_one(self, found: list[Detection], now_ms: int) -> list[Detection]:
        for i, detection in enumerate(found):
            try:
                await self._store([detection], now_ms)
            except REFUSED_AS_DATA as exc:
                self.rejected += 1
                log.error("the alert store refuses this detection, set aside: %r (%s)",
                          detection, exc.orig if exc.orig is not None else exc)
            except Exception:
                self._failed(len(found) - i)
                return found[i:]
        self.failing = False
        return []

    def _failed(self, count: int) -> None:
        self.failures += 1
        self.failing = True
        log.exception("storing %d detections failed; they are held and retried later", count)

    def _hold(self, found: list[Detection], now_ms: int) -> None:
        self._held.append((found, now_ms))
        self.size += len(found)
        self._unsaved = True
        self._shed()

    async def _save(self) -> None:
        """Bring the journal up to what is held now (a failure is logged; memory still holds)."""
        if self._journal is None:
            return
        async with self._saving:
            if not self._unsaved:
                return
            self._unsaved = False
            held = list(self._held)
            try:
                await asyncio.to_thread(self._journal.save, held)
            except OSError:
                self._unsaved = True
                log.exception("held-detections journal %s not written: %d detections are "
                              "held in memory only", self._journal.path, self.size)

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
