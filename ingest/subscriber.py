"""The MQTT side of ingest: a paho-mqtt client in its own thread, acknowledging manually.

A persistent session (MQTT 5, `clean_start=False` + session expiry, stable client id)
and `manual_ack=True` make delivery at-least-once: a message is acknowledged only when
the pipeline says its batch is stored, so a crash gets it redelivered (DUP set).

paho's callbacks only convert and queue. The broker sends far more unacknowledged
messages than its in-flight limit, so the buffer is bounded here: `on_message` blocks
paho's network thread (it stops reading the socket) while `max_pending` messages are
held and not yet released by the pipeline.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.backoff import Backoff
from ingest.config import MqttConfig
from ingest.errors import IngestError

log = logging.getLogger(__name__)
_PARKED_WAKEUP_S = 0.2  # how often a blocked on_message checks whether we are stopping
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Message:
    topic: str  # as received, prefix included
    payload: bytes
    mid: int
    qos: int
    dup: bool
    received_ms: int


class MqttSubscriber:
    """Subscribes to `{prefix}city/+/+/data` and `/batch`; hands messages to asyncio."""

    def __init__(self, config: MqttConfig, max_pending: int) -> None:
        self.config = config
        self._slots = threading.Semaphore(max_pending)
        self._inbox: collections.deque[Message] = collections.deque()
        self._signalled = False
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._publishes: dict[int, concurrent.futures.Future[None]] = {}
        self._early_pubacks: dict[int, Any] = {}  # mid -> reason code
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._client = self._make_client()

    @property
    def topics(self) -> list[str]:
        return [f"{self.config.topic_prefix}city/+/+/{kind}" for kind in ("data", "batch")]

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now (for readiness probes)."""
        return bool(self._client.is_connected())

    def start(self) -> None:
        """Connect in the background (paho's thread retries with backoff until it succeeds)."""
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        self._client.connect_async(
            self.config.host, self.config.port, keepalive=self.config.keepalive_s,
            clean_start=False, properties=props,
        )
        self._client.loop_start()

    async def wait_subscribed(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    def stop(self) -> None:
        """Disconnect (the session and unacknowledged messages stay with the broker)."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

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

    def release(self, count: int) -> None:
        """`count` held messages no longer occupy memory: let paho read that many more."""
        if count:
            self._slots.release(count)

    def ack(self, message: Message) -> None:
        self._client.ack(message.mid, message.qos)

    def publish(self, topic: str, payload: bytes) -> concurrent.futures.Future[None]:
        """Publish at QoS 1; the future completes when the broker has taken the message."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            future.set_exception(IngestError(f"publish to {topic}: {mqtt.error_string(info.rc)}"))
            return future
        with self._lock:  # the PUBACK may have beaten us here
            early = self._early_pubacks.pop(info.mid, None)
            if early is None:
                self._publishes[info.mid] = future
        if early is not None:
            _settle(future, info.mid, early)
        return future

    def _make_client(self) -> mqtt.Client:
        client = _BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=self.config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True,
        )
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password)
        if self.config.tls_ca:
            client.tls_set(ca_certs=self.config.tls_ca)
        self._backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        self._plan_reconnect(client)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    # -- paho's network thread below: convert, queue, never block the loop for long --

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("MQTT connect to %s:%s refused: %s", self.config.host, self.config.port, rc)
            return
        log.info("MQTT connected (session present: %s)", flags.session_present)
        self._backoff.reset()
        options = SubscribeOptions(qos=self.config.qos)
        client.subscribe([(topic, options) for topic in self.topics])

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        failed = [code for code in codes if code.is_failure]
        if failed:
            log.error("MQTT subscription to %s refused: %s", self.topics, failed)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._subscribed.set)

    def _on_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not self._stopping.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", rc)
            self._plan_reconnect(client)

    def _on_connect_fail(self, client: mqtt.Client, _u: Any) -> None:
        self._plan_reconnect(client)

    def _plan_reconnect(self, client: mqtt.Client) -> None:
        """paho doubles its reconnect wait but without jitter: give it each wait from ours."""
        delay_s = self._backoff.next_s()
        client.reconnect_delay_set(delay_s, delay_s)  # type: ignore[arg-type]  # floats work

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received_ms = time.time_ns() // 1_000_000
        while not (self._slots.acquire(blocking=False)
                   or self._slots.acquire(timeout=_PARKED_WAKEUP_S)):
            if self._stopping.is_set():
                return  # not acknowledged: the broker delivers it again
        payload = bytes(msg.payload)  # no copy when it already is bytes
        self._inbox.append(Message(msg.topic, payload, msg.mid, msg.qos, msg.dup, received_ms))
        if not self._signalled and self._loop is not None:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._arrived.set)

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        with self._lock:
            future = self._publishes.pop(mid, None)
            if future is None:
                self._early_pubacks[mid] = rc
        if future is not None:
            _settle(future, mid, rc)


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
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(self._sock, _BufferedReads) \
                and self._sock.pending():
            rc = super().loop_read(max_packets)
        return rc


def _settle(future: concurrent.futures.Future[None], mid: int, rc: Any) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):  # the waiter gave up
        if rc.is_failure:
            future.set_exception(IngestError(f"broker refused publish {mid}: {rc}"))
        else:
            future.set_result(None)
