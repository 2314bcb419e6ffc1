"""The ingestor: MQTT messages → decode → batch → sink → on_batch → acknowledge.

Delivery is at-least-once: a message is acknowledged only after its readings are
stored (and `on_batch` has seen them) and its dead letters, if any, were taken by
the broker. A crash anywhere before that gets it redelivered, and rewriting a point
is idempotent. A store that fails (retryably, or with a setup error such as a
missing database) holds the batch — and, through the bounded subscriber buffer,
the broker — and retries with exponential backoff and jitter.

A message refused whole gets one dead letter; a message refused in part stores its
good readings and gets one letter per refused reading (see `devices.decode`).
Out-of-range readings of known series are sensor faults: never stored (they are not
measurements), but handed to `on_batch` with the stored batch, before the message is
acknowledged, so the rule engine reports the broken sensor; a redelivery hands them again.

    ingestor = Ingestor(IngestConfig.from_settings(settings), lambda: registry,
                        InfluxSink(client, lambda: registry), on_batch=engine_hook)
    await ingestor.run(stop_event)   # returns after a final flush once stop_event is set
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import NamedTuple

import numpy as np

from devices.batch import ReadingBatch
from devices.clock import ArrivalFrontier, now_ms
from devices.decode import BadReading, Decoded, DecodeLimits, decode_rows
from devices.errors import DecodeError, RejectReason
from devices.registry import Registry
from ingest.backoff import Backoff
from ingest.batcher import Confirmation, PendingBatch
from ingest.config import IngestConfig
from ingest.counters import IngestCounters
from ingest.deadletter import (
    UNKNOWN_DEVICE_ID,
    WRITE_REJECTED,
    DeadLetter,
    device_from_topic,
    topic_segment,
)
from ingest.deadletter_publisher import DeadLetterPublisher
from ingest.errors import InfluxError
from ingest.sink import RefusedPoint, Sink
from ingest.subscriber import Message, MqttSubscriber
from ingest.unknown_devices import UnknownDevices

log = logging.getLogger(__name__)
OnBatch = Callable[[ReadingBatch, int, ReadingBatch], Awaitable[None]]  # stored, now, faults
DECODER_FAILED = "decoder_failed"  # the decoder raised something other than DecodeError
MAX_CHILDREN_LOOKED_UP = 100  # per gateway batch naming children the registry lacks


class Refusal(NamedTuple):
    """Why a whole message is refused; `device_id` names its dead letter."""

    reason: str
    detail: str
    device_id: str


class Ingestor:
    """Owns one MQTT subscription and feeds a `Sink`; `counters` says what it did."""

    def __init__(
        self, config: IngestConfig, registry: Callable[[], Registry], sink: Sink,
        *, on_batch: OnBatch | None = None, counters: IngestCounters | None = None,
        unknown: UnknownDevices | None = None, frontier: ArrivalFrontier | None = None,
    ) -> None:
        self.config, self.sink, self.on_batch = config, sink, on_batch
        self._frontier = frontier  # following the readings' time: what "the future" means
        self._unknown = unknown  # asked about senders the registry lacks before they are refused
        self.counters = IngestCounters() if counters is None else counters  # e.g. a SpoolingSink's
        self._registry = registry
        self._prefix = config.mqtt.topic_prefix
        self._subscriber = MqttSubscriber(config.mqtt, config.max_pending_messages,
                                          config.max_pending_bytes)
        self._letters = DeadLetterPublisher(config.mqtt)
        self._pending: PendingBatch | None = None
        self._writing: asyncio.Task[None] | None = None  # the batch being stored, if any
        self._stopping = asyncio.Event()
        self._state = "new"

    @property
    def connected(self) -> bool:
        """Whether both MQTT connections (readings in, dead letters out) are up (readiness)."""
        return self._subscriber.connected and self._letters.connected

    async def start(self) -> None:
        if self._state == "new":
            self._letters.start()
            self._subscriber.start()
            self._state = "started"

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until the broker has confirmed the subscriptions."""
        await self._subscriber.wait_subscribed(timeout_s)

    async def stop(self) -> None:
        """Flush what is pending (one write attempt), acknowledge what got stored, disconnect."""
        if self._state != "started":
            return
        self._state = "stopped"
        self._stopping.set()
        if self._pending is not None:
            await self._flush()
        await self._written()
        await asyncio.to_thread(self._subscriber.stop)  # joins paho's threads
        await asyncio.to_thread(self._letters.stop)

    async def __aenter__(self) -> Ingestor:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest until `stop` is set, then stop (final flush, disconnect)."""
        await self.start()
        watcher = asyncio.create_task(self._watch(stop))
        try:
            while not self._stopping.is_set():
                messages = await self._subscriber.receive(self._time_left_s())
                registry = self._registry()
                if await self._found_unknown(messages, registry):
                    registry = self._registry()
                limits = self._limits()
                for message in messages:
                    decoded = self._decode(message, registry, limits)
                    if await self._found_children(decoded, registry):
                        registry = self._registry()
                        decoded = self._decode(message, registry, limits)
                    self._take(message, decoded)
                    if self._pending is not None and self._pending.is_full(self.config.batch_size):
                        await self._flush()
                if self._time_left_s() == 0:
                    await self._flush()
        finally:
            watcher.cancel()
            await self.stop()

    async def _found_unknown(self, messages: list[Message], registry: Registry) -> bool:
        """Whether senders of `messages` unknown to `registry` were found stored (and loaded)."""
        if self._unknown is None:
            return False
        senders = {device_from_topic(m.topic.removeprefix(self._prefix)) for m in messages}
        return await self._look_up(
            {s for s in senders if s != UNKNOWN_DEVICE_ID and registry.get(s) is None})

    async def _found_children(self, decoded: Decoded | Refusal, registry: Registry) -> bool:
        """Whether children of a gateway's batch unknown to `registry` were found stored (and
        loaded); at most `MAX_CHILDREN_LOOKED_UP` of one batch's ids are asked."""
        if self._unknown is None or isinstance(decoded, Refusal) or not decoded.bad:
            return False
        missing = {b.device_id for b in decoded.bad if b.reason is RejectReason.UNKNOWN_DEVICE
                   and registry.get(b.device_id) is None}
        return await self._look_up(set(sorted(missing)[:MAX_CHILDREN_LOOKED_UP]))

    async def _look_up(self, missing: set[str]) -> bool:
        assert self._unknown is not None
        if not missing:
            return False
        try:
            return bool(await self._unknown.look_up(missing))
        except Exception:  # the registry refresh will find them; until then they are refused
            log.warning("looking up unknown devices %s failed", sorted(missing)[:5], exc_info=True)
            return False

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()
        self._subscriber.wake()

    def _time_left_s(self) -> float | None:
        if self._pending is None:
            return None
        return max(0.0, self._pending.time_left_s(time.monotonic(), self.config.flush_interval_s))

    def _limits(self) -> DecodeLimits:
        """The configured limits; following the readings' time, "the future" begins past the
        arrival frontier (anything within the age limit until it is known)."""
        limits = self.config.limits
        if self._frontier is None:
            return limits
        frontier_ms = self._frontier.limit_ms()
        if frontier_ms is None:
            return dataclasses.replace(limits, max_future_ms=limits.max_age_ms)
        lead_ms = max(0, frontier_ms - now_ms())
        return dataclasses.replace(limits, max_future_ms=limits.max_future_ms + lead_ms)

    def _decode(self, message: Message, registry: Registry,
                limits: DecodeLimits) -> Decoded | Refusal:
        topic = message.topic.removeprefix(self._prefix)
        try:
            if len(topic) == len(message.topic) and self._prefix:
                raise DecodeError(RejectReason.BAD_TOPIC, f"topic outside {self._prefix!r}")
            return decode_rows(topic, message.payload, registry, message.received_ms, limits)
        except DecodeError as exc:
            return Refusal(exc.reason.value, exc.detail, device_from_topic(topic))
        except Exception as exc:  # a decoder bug must not stop the city's stream
            log.exception("decoder failed on %s", message.topic)
            return Refusal(DECODER_FAILED, repr(exc), device_from_topic(topic))

    def _take(self, message: Message, decoded: Decoded | Refusal) -> None:
        self.counters.received += 1
        self.counters.redelivered += message.dup
        if self.config.ack_on_receipt:  # unsafe, benchmarks only (see IngestConfig)
            self._subscriber.ack(message)
        if self._pending is None:
            self._pending = PendingBatch(time.monotonic())
        if isinstance(decoded, Refusal):
            self._reject(message, *decoded)
        else:
            letters = [self._refuse(message, bad) for bad in decoded.bad]
            self._pending.add_faults(bad.fault for bad in decoded.bad if bad.fault is not None)
            if decoded.rows:
                self._pending.add_readings(message, decoded.rows, letters)
            else:
                self._hold(message, letters)

    def _reject(self, message: Message, reason: str, detail: str, device_id: str) -> None:
        self.counters.reject(reason)
        letter = DeadLetter(device_id, reason, detail, message.topic, message.payload)
        self._hold(message, [self._publish(letter)])

    def _refuse(self, message: Message, bad: BadReading) -> Confirmation:
        """Dead-letter one refused reading of `message` (the rest of it may be stored)."""
        self.counters.readings_rejected[bad.reason.value] += 1
        letter = DeadLetter(topic_segment(bad.device_id), bad.reason.value, bad.detail,
                            message.topic, message.payload, metric=bad.metric)
        return self._publish(letter)

    def _hold(self, message: Message, letters: list[Confirmation]) -> None:
        """Keep a message with nothing to store until the broker has taken its letters."""
        assert self._pending is not None
        nbytes = len(message.payload)  # its buffer place, freed with the letters' confirmation
        # Held until the letters are confirmed, which may lag under a flood of rejects: keep
        # only what the acknowledgement needs, not a second copy of a payload of up to 1 MB.
        # Its buffer place is freed only then too, so a flood of rejects is bounded by the
        # buffer (the broker holds the rest) rather than piling up letters in memory.
        self._pending.add_rejected(dataclasses.replace(message, payload=b""), letters)
        left, lock = [len(letters)], threading.Lock()

        def confirmed(_: Confirmation) -> None:  # on the dead-letter connection's thread
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                self._subscriber.release(1, nbytes)

        for letter in letters:
            letter.add_done_callback(confirmed)

    def _publish(self, letter: DeadLetter) -> Confirmation:
        return self._letters.publish(letter.mqtt_topic(self._prefix), letter.to_json())

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Publish a letter no message waits for (spool replay's); returns once the broker
        has it, raises `IngestError` if the broker refused it."""
        await asyncio.wrap_future(self._publish(letter))
        self.counters.dead_lettered += 1

    async def _flush(self) -> None:
        """Start storing the pending batch; the next one fills (decodes) while it is written.

        One batch is stored at a time, so acknowledgements keep the messages' order and
        at most two batches' messages are held.
        """
        pending, self._pending = self._pending, None
        assert pending is not None
        await self._written()
        self._writing = asyncio.create_task(self._write(pending))

    async def _written(self) -> None:
        """Until the batch being stored (if any) is stored and acknowledged."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing

    async def _write(self, pending: PendingBatch) -> None:
        batch, message_of = pending.readings()
        if self._frontier is not None:
            self._frontier.observe(batch.slot, batch.ts_ms)
        refused = await self._store(batch)
        self._subscriber.release(pending.n_good, pending.good_bytes)
        if refused is None:  # gave up while stopping: the broker will redeliver all of it
            return
        letters = pending.letters + [self._letter(p, batch, message_of, pending) for p in refused]
        stored, faults = self._account(batch, refused, pending), pending.faults()
        if self.on_batch is not None and (len(stored) or len(faults)):
            try:
                await self.on_batch(stored, now_ms(), faults)
            except Exception:
                self.counters.on_batch_errors += 1
                log.exception("on_batch failed; the batch is stored and acknowledged anyway")
        if self.config.ack_on_receipt:
            return
        by_message: dict[int, list[Confirmation]] = defaultdict(list)
        for index, letter in letters:
            by_message[index].append(letter)
        self._subscriber.ack_all(m for i, m in enumerate(pending.messages)
                                 if i not in by_message)
        for index, letters_of_message in by_message.items():
            self._ack_when_delivered(pending.messages[index], letters_of_message)

    async def _store(self, batch: ReadingBatch) -> list[RefusedPoint] | None:
        """Write with retries; None if stopping interrupted them."""
        if not len(batch):
            return []
        backoff = Backoff(self.config.retry_initial_s, self.config.retry_max_s)
        while True:
            try:
                return await self.sink.write(batch)
            except InfluxError as exc:
                self.counters.write_errors += 1
                delay_s = backoff.next_s()
                log.warning("storing %d readings failed (%s); retrying in %.1f s",
                            len(batch), exc, delay_s)
            if self._stopping.is_set():
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):
                    await self._stopping.wait()

    def _letter(
        self, point: RefusedPoint, batch: ReadingBatch, message_of: np.ndarray,
        pending: PendingBatch,
    ) -> tuple[int, Confirmation]:
        first = int(point.index[0])
        device_id = self._registry().series(int(batch.slot[first])).device_id
        message_index = int(message_of[first])
        topic = pending.messages[message_index].topic
        letter = DeadLetter(topic_segment(device_id), WRITE_REJECTED, point.detail, topic,
                            point.line)
        return message_index, self._publish(letter)

    def _account(
        self, batch: ReadingBatch, refused: list[RefusedPoint], pending: PendingBatch
    ) -> ReadingBatch:
        """Count the stored batch and return its readings minus the refused ones."""
        keep = np.ones(len(batch), dtype=bool)
        for point in refused:
            keep[point.index] = False
        stored = batch.take(keep)
        c = self.counters
        c.points_rejected += len(batch) - len(stored)
        c.stored_readings += len(stored)
        c.stored_messages += pending.n_good
        c.batches += 1
        c.last_batch_lag_ms = now_ms() - pending.oldest_received_ms()
        return stored

    def _ack_when_delivered(self, message: Message, letters: list[Confirmation]) -> None:
        """Acknowledge once the broker has taken every dead letter of the message.

        Never waited for here: the confirmations arrive on the dead-letter connection's
        thread. A letter lost with that connection is resent by paho after reconnecting.
        """
        loop, left = asyncio.get_running_loop(), [len(letters)]

        def delivered(future: Confirmation) -> None:  # on the event loop
            if future.exception() is None:
                self.counters.dead_lettered += 1
            else:  # refused by the broker (e.g. its ACL): retrying cannot help
                log.error("dead letter refused: %s", future.exception())
            left[0] -= 1
            if left[0] == 0:
                self._subscriber.ack(message)

        for letter in letters:
            letter.add_done_callback(lambda f: loop.call_soon_threadsafe(delivered, f))
