"""The publisher against the real Mosquitto: what it counts is what a subscriber gets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections import defaultdict

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.city import build_city
from simulators.errors import PublishError
from simulators.payloads import PayloadFormat, encode_messages
from simulators.publisher import PublishOptions, PublishSummary, publish
from tests.support.polling import eventually
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port

CITY = build_city(30, seed=8)
INDEX = {d.id: i for i, d in enumerate(CITY.devices)}


class Subscriber:
    """A QoS 1 subscriber on `<prefix>city/#` that records every message before its end marker.

    The marker is published once the broker has handled the publisher's whole connection,
    so it is queued to this subscriber behind everything the publisher sent.
    """

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.end_topic = f"{prefix}city/end"
        self.ended = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}city/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    async def wait_for_all_of(self, broker: Mosquitto, publisher_id: str, qos: int) -> None:
        """Wait until everything `publisher_id` published has arrived (it has disconnected)."""
        await broker_handled_disconnect(broker, publisher_id)
        self.client.publish(self.end_topic, b"", qos=qos)
        await eventually(self.ended.is_set, "the end marker behind the published messages")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, _c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        if m.topic == self.end_topic:
            self.ended.set()
        else:
            self.received.append((m.topic, m.payload))


async def broker_handled_disconnect(broker: Mosquitto, client_id: str) -> None:
    """Mosquitto reads a connection's packets in order: once it logs that the client left,
    it has routed every message that client sent."""
    gone = (f"Client {client_id} disconnected.", f"Client {client_id} closed its connection.")
    await eventually(lambda: any(line in broker.log_path.read_text(errors="replace")
                                 for line in gone),
                     f"the broker to log that {client_id} left")


def _ts_ms(payload: bytes, fmt: PayloadFormat) -> int:
    body = json.loads(payload)
    return body["ts"] if fmt is PayloadFormat.JSON else round(body[0]["bt"] * 1000)


@pytest.mark.parametrize(
    ("qos", "fmt"),
    [(1, PayloadFormat.JSON), (1, PayloadFormat.SENML), (0, PayloadFormat.JSON)],
    ids=["qos1-json", "qos1-senml", "qos0-json"],
)
async def test_subscriber_receives_exactly_what_was_published(
    mosquitto: Mosquitto, topic_prefix: str, qos: int, fmt: PayloadFormat
) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, topic_prefix)
    try:
        options = PublishOptions(
            mosquitto.url, f"sim-{uuid.uuid4().hex}", topic_prefix, qos, fmt
        )
        progress = []
        summary = await publish(CITY, options, 3000, 1.0, on_progress=progress.append)
        await sub.wait_for_all_of(mosquitto, options.client_id, qos)
    finally:
        sub.close()
    assert summary.messages > 500 and summary.messages_acked == summary.messages
    assert summary.readings_acked == summary.readings and summary.devices == len(CITY.devices)
    assert progress and progress[-1] == summary
    assert len(sub.received) == summary.messages
    per_device: dict[str, list[int]] = defaultdict(list)
    readings = 0
    for topic, payload in sub.received:
        device_id = topic.split("/")[-2]
        ts = _ts_ms(payload, fmt)
        per_device[device_id].append(ts)
        # Values are a pure function of (device, ts): rebuild the exact message and compare.
        expected = encode_messages(
            CITY, np.array([INDEX[device_id]]), np.array([ts]), fmt, topic_prefix
        )[0]
        assert (topic, payload) == (expected.topic, expected.payload)
        readings += expected.readings
    assert readings == summary.readings_acked
    assert set(per_device) == set(INDEX)  # round-robin reached every device
    for stamps in per_device.values():
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_unreachable_broker_is_a_publish_error() -> None:
    options = PublishOptions(f"mqtt://127.0.0.1:{free_port()}", connect_timeout_s=2)
    with pytest.raises(PublishError, match="cannot connect"):
        await publish(CITY, options, rate=10, duration_s=0.1)


async def test_bad_url_is_a_publish_error() -> None:
    with pytest.raises(PublishError, match="expected mqtt://"):
        await publish(CITY, PublishOptions("http://127.0.0.1:1"), rate=10, duration_s=0.1)


async def test_publisher_rides_out_a_broker_restart(
    mosquitto: Mosquitto, topic_prefix: str
) -> None:
    options = PublishOptions(mosquitto.url, f"sim-{uuid.uuid4().hex}", topic_prefix, qos=1)
    progress: list[PublishSummary] = []
    run = asyncio.create_task(
        publish(CITY, options, rate=500, duration_s=120.0, on_progress=progress.append)
    )
    try:
        await eventually(lambda: acked(progress) > 0, "a first acknowledged message")
        await asyncio.to_thread(mosquitto.restart)
        # Progress is reported once per tick, between which this test runs: this is exact.
        before_restart = progress[-1].messages
        # Acks retire in order, so more acks than messages sent before the restart means
        # one sent after it got through the new broker.
        await eventually(lambda: acked(progress) > before_restart,
                         "a message sent after the restart to be acknowledged", timeout_s=60)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    assert 0 < progress[-1].readings_acked <= progress[-1].readings


def acked(progress: list[PublishSummary]) -> int:
    return progress[-1].messages_acked if progress else 0


async def test_a_refused_login_says_how_to_give_one(secured_mosquitto: Mosquitto) -> None:
    """A broker that admits only known users (as the managed one does) refuses a simulator
    without a login: the error says what to do next."""
    options = PublishOptions(secured_mosquitto.url, connect_timeout_s=5)
    with pytest.raises(PublishError, match=r"Not authorized; give the broker's user and password"):
        await publish(CITY, options, rate=10, duration_s=0.1)
