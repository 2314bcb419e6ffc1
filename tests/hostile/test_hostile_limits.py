"""Limits that hold before work is done, on a running platform: oversized and slow request
bodies without a login, oversized, retained and misdirected MQTT publishes with a stolen device
login; and what it keeps on disk is its owner's only, with its broker unprivileged. Ingest goes
on meanwhile (`conftest.steady`)."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties

from tests.hostile.conftest import STRANGER, Hostile
from urbanwatch.services.broker_auth import managed_broker
from urbanwatch.services.mosquitto import MAX_PACKET_BYTES

WAIT_S = 30
MAX_BODY = 4 << 20  # the default api.max_body_bytes
NOT_AUTHORIZED, PACKET_TOO_LARGE, RETAIN_NOT_SUPPORTED = 135, 149, 154


async def raw_request(hostile: Hostile, head: bytes, body: bytes = b"") -> bytes:
    """Send `head` and `body` on a socket of its own; the status line and headers answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hostile.process.api_port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    finally:
        writer.close()


def post_head(path: str, length: int, content_type: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


async def test_oversized_bodies_are_413_without_a_login_and_unread(hostile: Hostile) -> None:
    for path, declared in (("/api/v1/auth/token", MAX_BODY + 1),
                           ("/api/v1/rules/validate", 1 << 30),
                           ("/api/v1/devices/import", (32 << 20) + 1)):
        answer = await raw_request(hostile, post_head(path, declared))  # no body sent at all
        assert answer.startswith(b"HTTP/1.1 413 "), (path, answer)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536

    async with httpx.AsyncClient(base_url=hostile.api_url, timeout=WAIT_S) as http:
        streamed = await http.post("/api/v1/rules/validate", content=chunks(),
                                   headers={"content-type": "application/json"})
    assert streamed.status_code == 413


async def test_slow_bodies_are_408_and_hold_up_nobody(hostile: Hostile) -> None:
    """Twenty clients trickle a body each; a login still succeeds meanwhile, and each slow
    one is answered 408 once its time is up (2 s here)."""
    head = post_head("/api/v1/auth/token", 200, "application/x-www-form-urlencoded")
    started = time.monotonic()
    slow = [asyncio.create_task(raw_request(hostile, head, b"username=ro")) for _ in range(20)]
    async with httpx.AsyncClient(base_url=hostile.api_url, timeout=WAIT_S) as http:
        quick = await http.post("/api/v1/auth/token", data={
            "username": "root", "password": hostile.passwords["root"]})
        assert quick.status_code == 200, quick.text
        assert (await http.get("/healthz")).status_code == 200
    answers = await asyncio.gather(*slow)
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[0]
    assert time.monotonic() - started >= 2  # not before the time allowed


class DeviceClient:
    """A device's MQTT 5 session with its login: what the broker said, and when it hung up."""

    def __init__(self, hostile: Hostile, device_id: str) -> None:
        self.acks: dict[int, int] = {}
        self.connack: Properties | None = None
        self.disconnected = threading.Event()
        self.disconnect_reason: int | None = None
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}-x",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(device_id, hostile.logins[device_id])
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.connect("127.0.0.1", hostile.mqtt_port)
        self.client.loop_start()
        assert self.connected.wait(WAIT_S)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object,
                    props: Properties) -> None:
        self.connack = props
        self.connected.set()

    def _on_publish(self, _c: object, _u: object, mid: int, reason: mqtt.ReasonCode,
                    _p: object) -> None:
        self.acks[mid] = reason.value

    def _on_disconnect(self, _c: object, _u: object, _f: object, reason: mqtt.ReasonCode,
                       _p: object) -> None:
        self.disconnect_reason = reason.value
        self.disconnected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)


def reading(device_type_metric: str = "pm25") -> bytes:
    return json.dumps({"ts": time.time_ns() // 1_000_000, "m": {device_type_metric: 12.0}}
                      ).encode()


async def test_a_device_login_publishes_only_its_own_data_and_batch(hostile: Hostile) -> None:
    device = DeviceClient(hostile, STRANGER)
    try:
        prefix = hostile.settings.mqtt.topic_prefix
        mine = device.client.publish(hostile.topic(STRANGER), reading(), qos=1)
        others = [device.client.publish(topic, reading(), qos=1) for topic in (
            hostile.topic("aq-0001"),  # another device's data (the background device)
            hostile.topic(STRANGER, "cmd"),  # its own, but not data or batch
            f"{prefix}dispatch/gas-emergency",  # a team's dispatches
            f"{prefix}deadletter/{STRANGER}",  # forged dead letters
        )]
        for info in (mine, *others):
            info.wait_for_publish(WAIT_S)
        assert device.acks[mine.mid] == 0
        assert [device.acks[i.mid] for i in others] == [NOT_AUTHORIZED] * len(others)
    finally:
        device.close()


async def test_an_oversized_publish_costs_the_sender_its_connection(hostile: Hostile) -> None:
    device = DeviceClient(hostile, STRANGER)
    try:
        body = json.dumps({"ts": time.time_ns() // 1_000_000, "m": {"pm25": 1.0},
                           "pad": "x" * MAX_PACKET_BYTES}).encode()
        device.client.publish(hostile.topic(STRANGER), body, qos=1)
        assert await asyncio.to_thread(device.disconnected.wait, WAIT_S)
        assert device.disconnect_reason == PACKET_TOO_LARGE
    finally:
        device.close()


async def test_retained_messages_are_not_kept_on_device_topics(hostile: Hostile) -> None:
    device = DeviceClient(hostile, STRANGER)
    try:
        assert device.connack is not None
        assert getattr(device.connack, "RetainAvailable", None) == 0
        device.client.publish(hostile.topic(STRANGER), reading(), qos=1, retain=True)
        assert await asyncio.to_thread(device.disconnected.wait, WAIT_S)
        assert device.disconnect_reason == RETAIN_NOT_SUPPORTED
    finally:
        device.close()


def test_its_state_is_its_owners_only_and_its_broker_unprivileged(hostile: Hostile) -> None:
    state = hostile.settings.state_dir

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    assert mode(state) == 0o700
    assert mode(state / "spool") == 0o700
    for name in ("urbanwatch.db", "urbanwatch.db-wal", "secret_key"):
        assert mode(state / name) == 0o600, name
    broker = managed_broker(hostile.settings)
    assert broker.pid is not None and broker.is_running()
    uid = int(next(line for line in Path(f"/proc/{broker.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:")).split()[1])
    expected = os.getuid() if os.geteuid() != 0 else pwd.getpwnam("mosquitto").pw_uid
    assert uid == expected
    for path in (broker.password_path, broker.acl_path):
        assert mode(path) == 0o600
