"""A `Sink` that takes batches to the local spool while the inner sink cannot store them.

`write` tries the inner sink only while the spool is empty; on a retryable
`InfluxError` (connection, timeout, 5xx) the batch is appended and fsynced and `write`
returns normally, so the pipeline acknowledges its messages. While the spool holds
anything, new batches are appended behind it, keeping their order. `run` drains the
spool oldest first once the inner sink answers again, with exponential backoff and
jitter. A full (or failing) spool raises a retryable `InfluxError`: the pipeline holds
the batch and stops acknowledging, so the broker keeps the messages.

Non-retryable errors other than refused points (401/403/404: a setup error) propagate
unchanged. Points the inner sink refuses during replay cannot be dead-lettered through
their messages (those were acknowledged when spooled): they are counted in
`replay_refused`, logged with the reason, and passed to `on_refused` if given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from devices.batch import ReadingBatch
from ingest.backoff import Backoff
from ingest.counters import IngestCounters
from ingest.errors import InfluxError
from ingest.sink import RefusedPoint, Sink
from ingest.spool import Spool, SpoolFull

log = logging.getLogger(__name__)
OnRefused = Callable[[ReadingBatch, list[RefusedPoint]], Awaitable[None]]


class SpoolingSink:
    def __init__(
        self, inner: Sink, spool: Spool, counters: IngestCounters, *,
        on_refused: OnRefused | None = None, retry_initial_s: float = 0.2,
        retry_max_s: float = 30.0,
    ) -> None:
        self.inner, self.spool, self.counters, self.on_refused = inner, spool, counters, on_refused
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self._spooled = asyncio.Event()  # set when there may be something to replay
        self._lock = asyncio.Lock()  # one spool operation at a time
        self._sync_counters()
        if len(spool):
            self._spooled.set()

    @property
    def spooling(self) -> bool:
        """Whether batches are going to the spool (readiness: the store is behind)."""
        return len(self.spool) > 0

    async def write(self, batch: ReadingBatch) -> list[RefusedPoint]:
        if not len(batch):
            return []
        if not self.spooling:
            try:
                return await self.inner.write(batch)
            except InfluxError as exc:
                if not exc.retryable:
                    raise
                log.warning("storing %d readings failed (%s); spooling", len(batch), exc)
        await self._append(batch)
        return []

    async def replay(self) -> bool:
        """Store spooled batches, oldest first, until empty (True) or a retryable failure."""
        while True:
            async with self._lock:
                spooled = await asyncio.to_thread(self.spool.peek)
            if spooled is None:
                return True
            try:
                refused = await self.inner.write(spooled.batch)
            except InfluxError as exc:  # retryable or a setup error: both wait and retry
                log.warning("replaying %d spooled readings failed (%s)", len(spooled.batch), exc)
                return False
            async with self._lock:
                await asyncio.to_thread(self.spool.consume, spooled)
            self.counters.replayed += len(spooled.batch) - sum(len(p.index) for p in refused)
            self._sync_counters()
            if refused:
                await self._report_refused(spooled.batch, refused)

    async def run(self, stop: asyncio.Event) -> None:
        """Replay whenever something is spooled, backing off while the inner sink fails."""
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while not stop.is_set():
            if not self.spooling:
                self._spooled.clear()
                await _first(self._spooled.wait(), stop.wait())
                continue
            try:
                if await self.replay():
                    backoff.reset()
                    continue
            except OSError:  # the spool's disk: keep the task alive and try again later
                log.exception("reading the spool failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff.next_s()):
                    await stop.wait()

    async def _append(self, batch: ReadingBatch) -> None:
        try:
            async with self._lock:
                await asyncio.to_thread(self.spool.append, batch)
        except (SpoolFull, OSError) as exc:
            self.counters.spool_full += 1
            log.error("cannot spool (%s): holding %d readings, not acknowledged", exc, len(batch))
            raise InfluxError(None, f"spool full or failing: {exc}", retryable=True) from exc
        self.counters.spooled += len(batch)
        self._sync_counters()
        self._spooled.set()

    async def _report_refused(self, batch: ReadingBatch, refused: list[RefusedPoint]) -> None:
        for point in refused:
            self.counters.replay_refused += len(point.index)
            log.error("InfluxDB refused a spooled point for good (%s): %r",
                      point.detail, point.line[:200])
        if self.on_refused is not None:
            await self.on_refused(batch, refused)

    def _sync_counters(self) -> None:
        self.counters.spool_bytes = self.spool.size_bytes
        self.counters.corrupt_records_skipped = self.spool.corrupt_records_skipped


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
