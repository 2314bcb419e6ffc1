"""A `Sink` that takes batches to the local spool while the inner sink cannot store them.

`write` tries the inner sink only while the spool is empty; on a retryable
`InfluxError` (connection, timeout, 5xx) the batch is appended and fsynced, as a record
naming its series (`ingest.spool_record`), and `write` returns normally, so the pipeline
acknowledges its messages. While the spool holds anything, new batches are appended
behind it, keeping their order. `run` drains the spool oldest first once the inner sink
answers again, with exponential backoff and jitter; each record is written under the
series it names, whatever the registry says by then. A full (or failing) spool raises a
retryable `InfluxError`: the pipeline holds the batch and stops acknowledging, so the
broker keeps the messages.

Non-retryable errors other than refused points (401/403/404: a setup error) propagate
unchanged. What replay cannot store is dead-lettered through `dead_letter` (their
messages were acknowledged when spooled): points the inner sink refuses for good, and
whole records that cannot be placed (version 1, undecodable). A record is consumed only
once its letters were confirmed (or refused by the broker, which retrying cannot help),
so a broker that does not answer holds the record, never the platform. Without
`dead_letter` they are logged and counted only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from devices.batch import ReadingBatch
from devices.registry import Registry
from ingest.backoff import Backoff
from ingest.counters import IngestCounters
from ingest.deadletter import (
    SPOOL_UNPLACEABLE,
    UNKNOWN_DEVICE_ID,
    WRITE_REJECTED,
    DeadLetter,
    topic_segment,
)
from ingest.errors import InfluxError, IngestError
from ingest.sink import InfluxSink, RefusedPoint
from ingest.spool import Spool, SpooledRecord, SpoolFull
from ingest.spool_record import RecordEncoder, SpoolRecord, Unplaceable, decode_record
from ingest.timeseries.lineprotocol import LineEncoder

log = logging.getLogger(__name__)
DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]  # returns once the broker has it
LETTER_TIMEOUT_S = 10.0  # then the record stays spooled and is tried again later


class SpoolingSink:
    def __init__(
        self, inner: InfluxSink, spool: Spool, counters: IngestCounters,
        registry: Callable[[], Registry], *, dead_letter: DeadLetterSink | None = None,
        retry_initial_s: float = 0.2, retry_max_s: float = 30.0,
    ) -> None:
        self.inner, self.spool, self.counters = inner, spool, counters
        self.dead_letter = dead_letter
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self._registry = registry
        self._records = RecordEncoder()
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
        """Store spooled records, oldest first, until empty (True) or a retryable failure."""
        while True:
            async with self._lock:
                spooled = await asyncio.to_thread(self.spool.peek)
            if spooled is None:
                return True
            try:
                record, encoder = await asyncio.to_thread(_placed, spooled)
            except Unplaceable as exc:
                letters, stored, refused, unplaceable = [self._unplaceable(spooled, exc)], 0, 0, 1
            else:
                try:
                    points = await self.inner.write(record.batch, encoder)
                except InfluxError as exc:  # retryable or a setup error: both wait and retry
                    log.warning("replaying %d spooled readings failed (%s)",
                                len(record.batch), exc)
                    return False
                letters = [self._refused(record, point) for point in points]
                refused = sum(len(p.index) for p in points)
                stored, unplaceable = len(record.batch) - refused, 0
            if not await self._send(letters):
                return False
            async with self._lock:
                await asyncio.to_thread(self.spool.consume, spooled)
            self.counters.replayed += stored
            self.counters.replay_refused += refused
            self.counters.unplaceable_records += unplaceable
            self._sync_counters()

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
        registry = self._registry()
        try:
            async with self._lock:
                await asyncio.to_thread(self._spool_batch, registry, batch)
        except (SpoolFull, OSError) as exc:
            self.counters.spool_full += 1
            log.error("cannot spool (%s): holding %d readings, not acknowledged", exc, len(batch))
            raise InfluxError(None, f"spool full or failing: {exc}", retryable=True) from exc
        self.counters.spooled += len(batch)
        self._sync_counters()
        self._spooled.set()

    def _spool_batch(self, registry: Registry, batch: ReadingBatch) -> None:
        self.spool.append(self._records.encode(registry, batch))

    def _unplaceable(self, spooled: SpooledRecord, exc: Unplaceable) -> DeadLetter:
        readings = "" if exc.n_readings is None else f" ({exc.n_readings} readings)"
        detail = f"spool record in {spooled.where}{readings}: {exc.detail}"
        log.error("dead-lettering a spool record that cannot be placed: %s", detail)
        return DeadLetter(UNKNOWN_DEVICE_ID, SPOOL_UNPLACEABLE, detail, "", spooled.payload)

    def _refused(self, record: SpoolRecord, point: RefusedPoint) -> DeadLetter:
        log.error("InfluxDB refused a spooled point for good (%s): %r",
                  point.detail, point.line[:200])
        device_id = topic_segment(record.device_of(int(point.index[0])))
        return DeadLetter(device_id, WRITE_REJECTED, point.detail, "", point.line)

    async def _send(self, letters: list[DeadLetter]) -> bool:
        """Each letter, once confirmed; False if one was not in time (retry the record)."""
        if self.dead_letter is None:
            return True  # logged where the letter was made
        for letter in letters:
            try:
                async with asyncio.timeout(LETTER_TIMEOUT_S):
                    await self.dead_letter(letter)
            except TimeoutError:
                log.warning("dead letter for %s not confirmed in %.0f s; the spool record "
                            "stays and is tried again", letter.device_id, LETTER_TIMEOUT_S)
                return False
            except IngestError as exc:  # refused by the broker (e.g. its ACL): retrying cannot help
                log.error("dead letter refused: %s", exc)
        return True

    def _sync_counters(self) -> None:
        self.counters.spool_bytes = self.spool.size_bytes
        self.counters.corrupt_records_skipped = self.spool.corrupt_records_skipped


def _placed(spooled: SpooledRecord) -> tuple[SpoolRecord, LineEncoder]:
    record = decode_record(spooled.version, spooled.payload)
    return record, LineEncoder(record.series)


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
