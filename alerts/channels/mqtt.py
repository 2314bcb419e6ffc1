"""MQTT channel: QoS 1 on ``{prefix}dispatch/{team_id}``, published once the broker PUBACKs.

paho-mqtt runs its network loop in its own thread; `send` waits for the PUBACK in a worker
thread (`wait_for_publish` blocks) so the event loop stays free. The JSON body carries the
idempotency key: QoS 1 may deliver twice, and a retried row is published again.
"""

from __future__ import annotations

import asyncio
import uuid

import paho.mqtt.client as mqtt

from alerts.channels.base import ChannelError
from alerts.sql.outbox import Delivery, Status


class MqttChannel:
    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        prefix: str = "",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_ca: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._host, self._port = host, port
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"urbanwatch-dispatch-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls_ca is not None:  # verify the broker against this CA (PEM file)
            self._client.tls_set(ca_certs=tls_ca)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._connected = asyncio.Event()

    async def start(self) -> None:
        """Connect and start paho's network thread; fails if the broker does not answer."""
        loop = asyncio.get_running_loop()

        def on_connect(_c, _u, _f, reason, _p) -> None:  # paho's thread
            if not reason.is_failure:
                loop.call_soon_threadsafe(self._connected.set)

        def on_disconnect(_c, _u, _f, _reason, _p) -> None:
            loop.call_soon_threadsafe(self._connected.clear)

        self._client.on_connect = on_connect
        self._client.on_disconnect = on_disconnect
        self._client.connect_async(self._host, self._port)
        self._client.loop_start()
        try:
            await asyncio.wait_for(self._connected.wait(), self._timeout_s)
        except TimeoutError as exc:
            await self.aclose()
            where = f"{self._host}:{self._port}"
            raise ChannelError(self.name, f"no CONNACK from {where}", retryable=True) from exc

    def topic(self, delivery: Delivery) -> str:
        return self._prefix + delivery.target

    async def send(self, delivery: Delivery) -> Status:
        """Publish at QoS 1; `published` once the broker PUBACKs (no word from the team)."""
        if not self._connected.is_set():
            raise ChannelError(self.name, "not connected to the broker", retryable=True)
        topic = self.topic(delivery)
        try:
            info = self._client.publish(topic, delivery.body, qos=1)
        except ValueError as exc:  # wildcards, empty or too long: this row can never go out
            raise ChannelError(self.name, f"invalid topic {topic!r}: {exc}",
                               retryable=False) from exc
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ChannelError(self.name, mqtt.error_string(info.rc), retryable=True)
        try:
            await asyncio.to_thread(info.wait_for_publish, self._timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise ChannelError(self.name, str(exc), retryable=True) from exc
        if not info.is_published():
            raise ChannelError(self.name, f"no PUBACK within {self._timeout_s} s", retryable=True)
        return Status.PUBLISHED

    async def aclose(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._client._reset_sockets()  # else left to the GC (eclipse-paho/paho.mqtt.python#627)
