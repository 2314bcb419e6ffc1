"""Dead letters go out on their own MQTT connection, each confirmed by a future.

The rejected message stays unacknowledged, and keeps its place in the subscriber's
bounded buffer, until the broker has taken its letter; with a connection of their own,
the letters' PUBACKs arrive even while the subscription's thread waits for that place.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from ingest.batcher import Confirmation
from ingest.config import MqttConfig
from ingest.errors import IngestError
from ingest.mqtt_connection import MqttConnection


class DeadLetterPublisher(MqttConnection):
    """Publishes at QoS 1 as `{client_id}-deadletters` (a clean session: a letter lost with
    a crash is written again when its message is redelivered)."""

    def __init__(self, config: MqttConfig) -> None:
        super().__init__(config, f"{config.client_id}-deadletters")
        self._lock = threading.Lock()
        self._publishes: dict[int, Confirmation] = {}
        self._early_pubacks: dict[int, Any] = {}  # mid -> reason code
        self._client.on_publish = self._on_publish

    def start(self) -> None:
        self._connect(clean_start=True)

    def publish(self, topic: str, payload: bytes) -> Confirmation:
        """Publish at QoS 1; the future completes when the broker has taken the message.

        While disconnected, paho queues it and sends it after reconnecting."""
        future: Confirmation = concurrent.futures.Future()
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

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        with self._lock:
            future = self._publishes.pop(mid, None)
            if future is None:
                self._early_pubacks[mid] = rc
        if future is not None:
            _settle(future, mid, rc)


def _settle(future: Confirmation, mid: int, rc: Any) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):  # the waiter gave up
        if rc.is_failure:
            future.set_exception(IngestError(f"broker refused publish {mid}: {rc}"))
        else:
            future.set_result(None)
