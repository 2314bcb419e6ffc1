"""A listener on `{prefix}deadletter/#`: every letter kept, and counted by reason (the
`deadletters` fixture, registered in tests/conftest.py)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from urbanwatch.services.mosquitto import Mosquitto


class DeadLetters:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.by_reason: Counter[str] = Counter()
        self.subscribed = threading.Event()

    def on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        letter = json.loads(msg.payload)
        self.received.append((msg.topic, letter))
        self.by_reason[letter["reason"]] += 1


@contextmanager
def listening(host: str, port: int, topic_prefix: str) -> Iterator[DeadLetters]:
    letters = DeadLetters()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_message = letters.on_message
    client.on_subscribe = lambda *_: letters.subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(f"{topic_prefix}deadletter/#", qos=1)
    client.connect(host, port)
    client.loop_start()
    try:
        assert letters.subscribed.wait(10), "dead-letter listener not subscribed"
        yield letters
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)


@pytest.fixture
def deadletters(mosquitto: Mosquitto, topic_prefix: str) -> Iterator[DeadLetters]:
    """Every dead letter of the test's topic prefix on the session broker."""
    with listening(mosquitto.host, mosquitto.port, topic_prefix) as letters:
        yield letters
