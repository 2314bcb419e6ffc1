"""The MQTT side of ingest: a paho-mqtt client in its own thread, acknowledging manually.

A persistent session (MQTT 5, `clean_start=False` + session expiry, stable client id)
and `manual_ack=True` make delivery at-least-once: a message is acknowledged only when
the pipeline says its batch is stored, so a crash gets it redelivered (DUP set).
Packet ids belong to a connection: a message received before a reconnect is never
acknowledged after it. The broker sends it again (same id, DUP) when the session
survived, and that copy is acknowledged once stored; acknowledging the old one as well
would be a second PUBACK for an id the broker may by then have given a new message.

paho's callbacks only convert and queue. The broker sends far more unacknowledged
messages than its in-flight limit, so the buffer is bounded here, by messages and by
payload bytes: `on_message` blocks paho's network thread (it stops reading the socket)
while `max_pending` messages, or `max_pending_bytes` of payload, are held and not yet
released by the pipeline (one message is always let in when nothing is held, however
large: the broker's packet limit bounds it). Dead letters therefore go out on a
connection of their own (`ingest/deadletter_publisher.py`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from devices.clock import now_ms
from ingest.config import MqttConfig
from ingest.mqtt_connection import MqttConnection

log = logging.getLogger(__name__)
_PARKED_WAKEUP_S = 0.2  # how often a blocked on_message checks whether we are stopping
_READ_CHUNK = 64 * 1024
_PACKETS_PER_READ = 1000  # a flood never keeps paho's loop from writing for longer than this
_PUBACK = struct.Struct("!BBH")  # PUBACK, remaining length 2, packet id (reason: success)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str  # as received, prefix included
    payload: bytes
    mid: int
    qos: int
    dup: bool
    received_ms: int
    connection: int  # which connection of the subscriber received it (see `ack`)


class MqttSubscriber(MqttConnection):
    """Subscribes to `{prefix}city/+/+/data` and `/batch` (or, for a partitioned worker,
    `city/{district}/+/...` of its districts); hands messages to asyncio."""

    def __init__(self, config: MqttConfig, max_pending: int, max_pending_bytes: int) -> None:
        super().__init__(config, config.client_id, manual_ack=True, client_class=_BufferedClient)
        self._slots = threading.Semaphore(max_pending)
        self._bytes = _ByteBudget(max_pending_bytes)
        self._inbox: collections.deque[Message] = collections.deque()
        self._signalled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._connection = 0  # counts lost connections: the number of the current one
        self._connection_lock = threading.Lock()  # an ack is checked and queued under it
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def topics(self) -> list[str]:
        group = self.config.share_group
        share = f"$share/{group}/" if group else ""
        districts = self.config.districts if self.config.districts is not None else ("+",)
        return [f"{share}{self.config.topic_prefix}city/{district}/+/{kind}"
                for district in districts for kind in ("data", "batch")]

    def start(self) -> None:
        """Connect in the background, resuming the persistent session."""
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        self._connect(clean_start=False, properties=props)

    async def wait_subscribed(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    async def receive(self, timeout_s: float | None) -> list[Message]:
        """Whatever has arrived; waits up to `timeout_s` (or a `wake()`) when nothing has."""
        while True:
            if self._inbox:
                return [self._inbox.popleft() for _ in range(len(self._inbox))]
            self._arrived.clear()
            self._signalled = False
            if self._inbox:  # arrived between the check above and the flag reset
                continue
            try:
                async with asyncio.timeout(timeout_s):
                    await self._arrived.wait()
            except TimeoutError:
                return []
            if not self._inbox:
                return []

    def wake(self) -> None:
        """Make a pending `receive()` return now (used when stopping)."""
        self._arrived.set()

    @property
    def held_bytes(self) -> int:
        """Payload bytes received and not yet released."""
        return self._bytes.held

    def release(self, count: int, nbytes: int) -> None:
        """`count` held messages of `nbytes` payload in all no longer occupy memory: let paho
        read that much more."""
        if count:
            self._slots.release(count)
        self._bytes.give(nbytes)

    def ack(self, message: Message) -> None:
        """PUBACK, unless the message came over an earlier connection (module docstring).

        The number changes the moment a connection is lost; what paho queued before that is
        dropped when it reconnects, so no old packet id reaches the next connection.
        """
        with self._connection_lock:
            if message.connection == self._connection:
                self._client.ack(message.mid, message.qos)

    def ack_all(self, messages: Iterable[Message]) -> None:
        """`ack` each of `messages`, in order; the QoS 1 PUBACKs go to paho as one write
        (one wake-up of its thread, one send) instead of one per message."""
        with self._connection_lock:
            current = [m for m in messages if m.connection == self._connection]
            _puback_all(self._client, [m.mid for m in current if m.qos == 1])
            for message in current:
                if message.qos != 1:
                    self._client.ack(message.mid, message.qos)

    # -- paho's network thread below: convert, queue, never block the loop for long --

    def _on_connected(self, client: mqtt.Client, session_present: bool) -> None:
        log.info("MQTT connected (session present: %s)", session_present)
        options = SubscribeOptions(qos=self.config.qos)
        client.subscribe([(topic, options) for topic in self.topics])

    def _on_connection_lost(self) -> None:
        with self._connection_lock:
            self._connection += 1

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        failed = [code for code in codes if code.is_failure]
        if failed:
            log.error("MQTT subscription to %s refused: %s", self.topics, failed)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._subscribed.set)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received_ms = now_ms()
        while not (self._slots.acquire(blocking=False)
                   or self._slots.acquire(timeout=_PARKED_WAKEUP_S)):
            if self._stopping.is_set():
                return  # not acknowledged: the broker delivers it again
        payload = bytes(msg.payload)  # no copy when it already is bytes
        while not self._bytes.take(len(payload), _PARKED_WAKEUP_S):
            if self._stopping.is_set():
                self._slots.release()
                return
        self._inbox.append(Message(msg.topic, payload, msg.mid, msg.qos, msg.dup, received_ms,
                                   self._connection))
        if not self._signalled and self._loop is not None:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._arrived.set)


class _ByteBudget:
    """Payload bytes held, at most `limit` (or one message of any size when none are)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._changed = threading.Condition()

    def take(self, nbytes: int, timeout_s: float) -> bool:
        """Hold `nbytes` more once they fit; False if they did not within `timeout_s`."""
        with self._changed:
            fits = self._changed.wait_for(
                lambda: self.held == 0 or self.held + nbytes <= self.limit, timeout_s)
            if fits:
                self.held += nbytes
            return fits

    def give(self, nbytes: int) -> None:
        if nbytes:
            with self._changed:
                self.held -= nbytes
                self._changed.notify_all()


class _BufferedReads:
    """A connected socket read in large chunks.

    paho reads a packet with one `recv` per header byte and one for the rest; at one
    reading per message that is three system calls per reading. This serves those small
    reads from one large `recv`; `pending()` tells paho's loop that bytes are waiting
    here even though the socket itself no longer polls readable (as it does for TLS).
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos == len(self._data):
            self._data, self._pos = self._sock.recv(max(size, _READ_CHUNK)), 0
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        below = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._data) - self._pos + below

    def __getattr__(self, name: str) -> Any:  # send, fileno, close, setblocking, ...
        return getattr(self._sock, name)


class _BufferedClient(mqtt.Client):
    """paho's client reading through `_BufferedReads`, every buffered packet per wake-up."""

    def _create_socket(self) -> Any:
        return _BufferedReads(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Up to `_PACKETS_PER_READ` packets, then back to paho's loop (PUBACKs, pings)."""
        rc = super().loop_read(max_packets)
        for _ in range(_PACKETS_PER_READ):
            if not (rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(self._sock, _BufferedReads)
                    and self._sock.pending()):
                break
            rc = super().loop_read(max_packets)
        return rc


def _puback_all(client: mqtt.Client, mids: list[int]) -> None:
    """PUBACKs for `mids` (QoS 1, manual acks) queued as one packet of paho's out queue."""
    if mids:
        packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
        client._packet_queue(mqtt.PUBACK, packet, 0, 1)
