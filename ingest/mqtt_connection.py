"""A paho-mqtt client in its own network thread, reconnecting with jittered backoff.

Both MQTT connections of ingest are one of these: the subscription (`MqttSubscriber`)
and the dead-letter publisher (`DeadLetterPublisher`). They are separate connections so
that waiting for one never stops the other's network thread: the subscription's thread
blocks while its buffer is full, and only the dead letters' PUBACKs can free it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties

from ingest.backoff import Backoff
from ingest.config import MqttConfig

log = logging.getLogger(__name__)


class MqttConnection:
    """MQTT 5 with the configured credentials and TLS; `_on_connected` is the subclass's hook."""

    def __init__(self, config: MqttConfig, client_id: str, *, manual_ack: bool = False,
                 client_class: type[mqtt.Client] = mqtt.Client) -> None:
        self.config = config
        self._stopping = threading.Event()
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        client = client_class(CallbackAPIVersion.VERSION2, client_id=client_id,
                              protocol=MQTTProtocolVersion.MQTTv5, manual_ack=manual_ack)
        if config.username:
            client.username_pw_set(config.username, config.password)
        if config.tls_ca:
            client.tls_set(ca_certs=config.tls_ca)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail  # plans each wait, the first one too
        self._client = client

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now (for readiness probes)."""
        return bool(self._client.is_connected())

    def _connect(self, *, clean_start: bool, properties: Properties | None = None) -> None:
        """Connect in the background (paho's thread retries with backoff until it succeeds)."""
        self._client.connect_async(
            self.config.host, self.config.port, keepalive=self.config.keepalive_s,
            clean_start=clean_start, properties=properties,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()
        # paho closes its wake-up socket pair only when the client is collected, which our
        # callbacks' reference cycle leaves to the cyclic GC (eclipse-paho/paho.mqtt.python#627)
        self._client._reset_sockets()

    def _on_connected(self, client: mqtt.Client, session_present: bool) -> None:
        """Called on paho's thread once the broker accepted the connection."""

    def _on_connection_lost(self) -> None:
        """Called on paho's thread as soon as a connection is gone (before any reconnect)."""

    # -- paho's network thread below --

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("MQTT connect to %s:%s refused: %s", self.config.host, self.config.port, rc)
            return
        self._backoff.reset()
        self._on_connected(client, flags.session_present)

    def _on_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._on_connection_lost()
        if not self._stopping.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", rc)
            self._plan_reconnect(client)

    def _on_connect_fail(self, client: mqtt.Client, _u: Any) -> None:
        self._plan_reconnect(client)

    def _plan_reconnect(self, client: mqtt.Client) -> None:
        """paho doubles its reconnect wait but without jitter: give it each wait from ours."""
        delay_s = self._backoff.next_s()
        client.reconnect_delay_set(delay_s, delay_s)  # type: ignore[arg-type]  # floats work
