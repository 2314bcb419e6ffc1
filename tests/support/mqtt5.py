"""A small blocking MQTT 5 client for broker tests: CONNACK / PUBACK reason codes and messages.

MQTT 5 because Mosquitto tells an MQTT 5 client why it refused (reason code 135 "Not
authorized" on a PUBACK); on MQTT 3.1.1 a denied publish is acknowledged like any other.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

WAIT_S = 10.0
NOT_AUTHORIZED = 135  # Mosquitto 2.0 answers a bad login with it too


class Client:
    """Connect with `connect()`; `reason` is the CONNACK's reason code (None until it came)."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None,
                 *, tls_ca: str | None = None) -> None:
        self.port = port
        self.reason: ReasonCode | None = None
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.disconnected = threading.Event()
        self._connack = threading.Event()
        self._subacks: set[int] = set()
        self._pubacks: dict[int, Any] = {}
        self._puback = threading.Condition()
        self._c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:10]}",
                              protocol=MQTTProtocolVersion.MQTTv5)
        if username is not None:
            self._c.username_pw_set(username, password)
        if tls_ca is not None:
            self._c.tls_set(ca_certs=tls_ca)
        self._c.on_connect = self._on_connect
        self._c.on_disconnect = lambda *_: self.disconnected.set()
        self._c.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self._c.on_subscribe = self._on_subscribe
        self._c.on_publish = self._on_publish

    def connect(self) -> ReasonCode:
        """Connect once (no retries) and return the CONNACK reason code."""
        self._c.connect("127.0.0.1", self.port)
        self._c.loop_start()
        assert self._connack.wait(WAIT_S), "no CONNACK"
        assert self.reason is not None
        if self.reason.is_failure:
            self.close()
        return self.reason

    def subscribe(self, topic: str) -> None:
        _, mid = self._c.subscribe(topic, qos=1)
        with self._puback:
            assert self._puback.wait_for(lambda: mid in self._subacks, WAIT_S), "no SUBACK"

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        """Publish at QoS 1 and return the PUBACK's reason code value (0 = accepted)."""
        info = self._c.publish(topic, payload, qos=1)
        with self._puback:
            assert self._puback.wait_for(lambda: info.mid in self._pubacks, WAIT_S), "no PUBACK"
            return int(self._pubacks.pop(info.mid).value)

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 without waiting for the PUBACK (the broker may disconnect instead)."""
        self._c.publish(topic, payload, qos=1, retain=retain)

    def close(self) -> None:
        self._c.disconnect()
        self._c.loop_stop()
        self._c._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.reason = reason
        self._connack.set()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._puback:
            self._subacks.add(mid)
            self._puback.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._puback:
            self._pubacks[mid] = reason
            self._puback.notify_all()


def accepted(code: int) -> bool:
    """A PUBACK reason below 128 is a success (16 = accepted, but nobody subscribes)."""
    return code < 0x80


def received_so_far(client: Client, own_topic: str) -> list[tuple[str, bytes]]:
    """Every message the broker has sent `client` until now, without waiting for silence.

    `client` publishes to `own_topic` at QoS 1: the broker answers on the same connection,
    behind every message it had already routed to `client`, so once the PUBACK is in, so are
    they (a few messages, well within the broker's in-flight window)."""
    assert accepted(client.publish(own_topic)), f"{own_topic} refused"
    out = []
    with contextlib.suppress(queue.Empty):
        while True:
            msg = client.messages.get_nowait()
            out.append((msg.topic, bytes(msg.payload)))
    return out
