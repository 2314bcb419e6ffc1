"""Publish the synthetic city's readings to an MQTT broker at a target rate.

paho-mqtt's network thread (`loop_start`) does the socket work; an asyncio loop
paces publishing in small ticks, round-robin over the devices. A message counts
as acknowledged once paho reports it published: for QoS 1 that is the broker's
PUBACK, for QoS 0 the socket write. Messages still unacknowledged are bounded,
so a slow broker lowers the achieved rate instead of growing memory.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.clock import now_ms
from simulators.city import City
from simulators.errors import PublishError
from simulators.payloads import PayloadFormat, encode_messages

NOT_AUTHORIZED = (134, 135)  # CONNACK: bad user name or password, not authorized


@dataclass(frozen=True)
class PublishOptions:
    url: str
    client_id: str = "urbanwatch-simulator"
    topic_prefix: str = ""
    qos: int = 1
    fmt: PayloadFormat = PayloadFormat.JSON
    max_inflight: int = 1000
    tick_s: float = 0.02
    connect_timeout_s: float = 10.0
    drain_timeout_s: float = 10.0
    tls_ca: str | None = None  # CA certificate (PEM) to verify the broker; set = TLS


@dataclass(frozen=True)
class PublishSummary:
    messages: int
    readings: int
    messages_acked: int
    readings_acked: int
    devices: int
    duration_s: float

    @property
    def rate(self) -> float:
        """Acknowledged readings per second."""
        return self.readings_acked / self.duration_s if self.duration_s > 0 else 0.0


ProgressCallback = Callable[[PublishSummary], None]


class Acks:
    """Messages in flight, retired in order as paho marks them published."""

    def __init__(self) -> None:
        self.pending: deque[tuple[mqtt.MQTTMessageInfo, int]] = deque()
        self.messages = self.readings = self.messages_acked = self.readings_acked = 0

    def add(self, info: mqtt.MQTTMessageInfo, readings: int) -> None:
        self.pending.append((info, readings))
        self.messages += 1
        self.readings += readings

    def sweep(self) -> None:
        while self.pending:
            info, readings = self.pending[0]
            try:
                if not info.is_published():
                    return
            except (ValueError, RuntimeError):  # refused by paho: never sent, never acked
                self.pending.popleft()
                continue
            self.pending.popleft()
            self.messages_acked += 1
            self.readings_acked += readings

    def summary(self, devices: int, duration_s: float) -> PublishSummary:
        return PublishSummary(
            self.messages,
            self.readings,
            self.messages_acked,
            self.readings_acked,
            devices,
            duration_s,
        )


async def publish(
    city: City,
    options: PublishOptions,
    rate: float,
    duration_s: float,
    on_progress: ProgressCallback | None = None,
    stop: asyncio.Event | None = None,
) -> PublishSummary:
    """Publish about `rate` readings/s for `duration_s` (or until `stop` is set), then wait for
    outstanding acks."""
    if rate <= 0 or duration_s < 0 or not city.devices:
        raise ValueError("need rate > 0, duration_s >= 0 and a city with devices")
    client = await connect(options)
    try:
        return await _run(client, city, options, rate, duration_s, on_progress,
                          stop or asyncio.Event())
    finally:
        client.disconnect()
        client.loop_stop()


async def _run(
    client: mqtt.Client,
    city: City,
    options: PublishOptions,
    rate: float,
    duration_s: float,
    on_progress: ProgressCallback | None,
    stop: asyncio.Event,
) -> PublishSummary:
    n = len(city.devices)
    readings_per_message = np.mean([len(city.catalogue[d.type].metrics) for d in city.devices])
    last_ts = np.zeros(n, dtype=np.int64)
    max_pending = options.max_inflight
    acks = Acks()
    cursor = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < duration_s and not stop.is_set():
        due = int(rate * elapsed)
        # While paho reconnects, readings are not queued up: a real device would drop them too.
        while acks.readings < due and len(acks.pending) < max_pending and client.is_connected():
            # At most one message per device per chunk, so a chunk shares one clock read.
            k = min(n, max(1, int((due - acks.readings) / readings_per_message)))
            idx = (cursor + np.arange(k)) % n
            cursor = (cursor + k) % n
            # Strictly increasing per device: a repeated (series, ts) would overwrite in storage.
            ts = np.maximum(now_ms(), last_ts[idx] + 1)
            last_ts[idx] = ts
            for msg in encode_messages(city, idx, ts, options.fmt, options.topic_prefix):
                acks.add(client.publish(msg.topic, msg.payload, options.qos), msg.readings)
            acks.sweep()
        acks.sweep()
        if on_progress is not None:
            on_progress(acks.summary(n, elapsed))
        await asyncio.sleep(options.tick_s)
    drain_until = time.monotonic() + options.drain_timeout_s
    acks.sweep()
    while acks.pending and time.monotonic() < drain_until:
        await asyncio.sleep(0.01)
        acks.sweep()
    summary = acks.summary(n, time.monotonic() - start)
    if on_progress is not None:
        on_progress(summary)
    return summary


async def connect(options: PublishOptions) -> mqtt.Client:
    parts = urlsplit(options.url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise PublishError(options.url, "expected mqtt://[user:pass@]host[:port] or mqtts://")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=options.client_id)
    client.max_inflight_messages_set(options.max_inflight)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    connected = threading.Event()
    outcome: list[mqtt.ReasonCode] = []

    def on_connect(_c: object, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        outcome.append(reason)
        connected.set()

    client.on_connect = on_connect
    try:
        tls = options.tls_ca is not None or parts.scheme == "mqtts"
        if tls:  # the system's CAs unless one is given; OSError for a missing or bad CA file
            client.tls_set(ca_certs=options.tls_ca)
        port = parts.port or (8883 if tls else 1883)
        # connect() blocks on the TCP handshake, so keep it off the event loop.
        await asyncio.to_thread(client.connect, parts.hostname, port, 30)
    except OSError as exc:
        raise PublishError(options.url, f"cannot connect: {exc}") from exc
    client.loop_start()
    answered = await asyncio.to_thread(connected.wait, options.connect_timeout_s)
    if not answered or outcome[0].is_failure:
        client.loop_stop()
        reason = str(outcome[0]) if outcome else "no CONNACK"
        refused_login = bool(outcome) and outcome[0].value in NOT_AUTHORIZED
        hint = ("; give the broker's user and password in the URL "
                "(mqtt://USER:PASSWORD@host:port), or leave --mqtt-url out to use the managed "
                "broker's simulator login") if refused_login else ""
        raise PublishError(options.url, f"connection refused: {reason}{hint}")
    return client
