"""The publisher against the real Mosquitto: what it counts is what a subscriber gets."""

from __future__ import annotations

import asyncio
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
from simulators.publisher import PublishOptions, publish
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port

CITY = build_city(30, seed=8)
INDEX = {d.id: i for i, d in enumerate(CITY.devices)}


class Subscriber:
    """A QoS 1 subscriber on `<prefix>city/#` that records every message."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}city/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    async def wait_for(self, count: int, timeout_s: float = 30) -> None:
        for _ in range(int(timeout_s / 0.05)):
            if len(self.received) >= count:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # anything beyond `count` would show up now

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


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
        await sub.wait_for(summary.messages)
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
    run = asyncio.create_task(publish(CITY, options, rate=500, duration_s=4.0))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(mosquitto.restart)
    summary = await run
    assert 0 < summary.readings_acked <= summary.readings
    # Publishing resumed after the restart: more than the first second's worth got through.
    assert summary.readings_acked > 1.5 * 500
