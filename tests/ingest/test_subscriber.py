"""The MQTT subscriber's reads: many packets per `recv`, none lost or torn (real Mosquitto)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from ingest.config import MqttConfig
from ingest.subscriber import _READ_CHUNK, Message, MqttSubscriber, _BufferedReads
from tests.ingest.conftest import Publisher
from tests.support.polling import WAIT_S
from urbanwatch.services.mosquitto import Mosquitto


def test_buffered_reads_serve_small_reads_from_one_recv() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        reads = _BufferedReads(right)
        left.sendall(b"\x30\x05hello" + b"\x40\x02\x00\x07")
        assert reads.recv(1) == b"\x30"
        assert reads.pending() == 10  # the rest is already here, not in the socket
        rest = (reads.recv(1), reads.recv(5), reads.recv(4))
        assert rest == (b"\x05", b"hello", b"\x40\x02\x00\x07")
        assert reads.pending() == 0
        with pytest.raises(BlockingIOError):  # nothing buffered, nothing on the wire
            reads.recv(1)
        big = bytes(range(256)) * (3 * _READ_CHUNK // 256)
        left.sendall(big)
        got = b""
        while len(got) < len(big):
            try:
                got += reads.recv(len(big) - len(got))
            except BlockingIOError:
                continue
        assert got == big
        left.close()
        assert reads.recv(1) == b""  # end of stream passes through


async def test_a_burst_of_mixed_sizes_arrives_whole_and_in_order(
    mosquitto: Mosquitto, publisher: Publisher, topic_prefix: str
) -> None:
    config = MqttConfig(mosquitto.host, mosquitto.port, f"sub-{uuid.uuid4().hex[:8]}",
                        topic_prefix=topic_prefix)
    subscriber = MqttSubscriber(config, max_pending=100, max_pending_bytes=1 << 20)
    subscriber.start()
    try:
        await subscriber.wait_subscribed(WAIT_S)
        sizes = [10, 2 * _READ_CHUNK + 3, 1, _READ_CHUNK - 1, 500] * 60  # straddle every chunk
        payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]

        def send_all() -> None:  # all at once, so the subscriber gets many packets per read
            infos = [publisher.client.publish(f"{topic_prefix}city/d1/aq-{i % 3}/data", p, qos=1)
                     for i, p in enumerate(payloads)]
            for info in infos:
                info.wait_for_publish(WAIT_S)

        sent = asyncio.create_task(asyncio.to_thread(send_all))
        got: list[Message] = []
        async with asyncio.timeout(WAIT_S):
            while len(got) < len(payloads):
                batch = await subscriber.receive(1.0)
                got += batch
                subscriber.release(len(batch), sum(len(m.payload) for m in batch))
                for message in batch:
                    subscriber.ack(message)
        await sent
    finally:
        subscriber.stop()
    assert [m.payload for m in got] == payloads
    assert [m.topic for m in got] == [f"{topic_prefix}city/d1/aq-{i % 3}/data"
                                      for i in range(len(payloads))]



async def test_held_payload_bytes_are_bounded_and_one_large_message_still_passes(
    mosquitto: Mosquitto, publisher: Publisher, topic_prefix: str
) -> None:
    config = MqttConfig(mosquitto.host, mosquitto.port, f"sub-{uuid.uuid4().hex[:8]}",
                        topic_prefix=topic_prefix)
    subscriber = MqttSubscriber(config, max_pending=100, max_pending_bytes=1000)
    subscriber.start()
    try:
        await subscriber.wait_subscribed(WAIT_S)
        payloads = [b"a" * 400, b"b" * 400, b"c" * 400, b"d" * 5000, b"e" * 10]
        for payload in payloads:
            publisher.client.publish(f"{topic_prefix}city/d1/aq-1/data", payload, qos=1)
        got = await _receive(subscriber, 2)
        assert [m.payload for m in got] == payloads[:2]
        assert subscriber.held_bytes == 800
        assert await subscriber.receive(0.5) == []  # the third would pass 1000 bytes
        subscriber.release(2, 800)
        got = await _receive(subscriber, 1)
        assert got[0].payload == payloads[2]
        subscriber.release(1, 400)
        got = await _receive(subscriber, 1)  # alone, larger than the whole budget
        assert (got[0].payload, subscriber.held_bytes) == (payloads[3], 5000)
        subscriber.release(1, 5000)
        assert [m.payload for m in await _receive(subscriber, 1)] == payloads[4:]
    finally:
        subscriber.stop()


async def _receive(subscriber: MqttSubscriber, count: int) -> list[Message]:
    got: list[Message] = []
    async with asyncio.timeout(WAIT_S):
        while len(got) < count:
            got += await subscriber.receive(1.0)
    return got


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_stopping_closes_every_socket(mosquitto: Mosquitto, topic_prefix: str) -> None:
    """Not left to the garbage collector: its order of finalizers would make paho's sockets
    warn now and then (and fail a run that treats warnings as errors)."""
    config = MqttConfig(mosquitto.host, mosquitto.port, f"sub-{uuid.uuid4().hex[:8]}",
                        topic_prefix=topic_prefix)
    subscriber = MqttSubscriber(config, max_pending=10, max_pending_bytes=1 << 20)
    before = _open_fds()
    subscriber.start()
    await subscriber.wait_subscribed(WAIT_S)
    assert _open_fds() > before
    subscriber.stop()
    assert _open_fds() == before  # while the subscriber is still referenced


async def _next(subscriber: MqttSubscriber) -> Message:
    async with asyncio.timeout(WAIT_S):
        while not (got := await subscriber.receive(1.0)):
            pass
    subscriber.release(len(got), sum(len(m.payload) for m in got))
    [message] = got
    return message


async def test_a_message_from_before_a_reconnect_is_not_acknowledged_after_it(
    mosquitto: Mosquitto, publisher: Publisher, topic_prefix: str
) -> None:
    """Its packet id was the old connection's: the broker sends it again (same id, DUP),
    and only that copy may be acknowledged, once."""
    config = MqttConfig(mosquitto.host, mosquitto.port, f"sub-{uuid.uuid4().hex[:8]}",
                        topic_prefix=topic_prefix, reconnect_min_s=0.2, reconnect_max_s=0.5)
    first = MqttSubscriber(config, max_pending=10, max_pending_bytes=1 << 20)
    first.start()
    try:
        await first.wait_subscribed(WAIT_S)
        publisher.send("city/d1/aq-1/data", b"m1")
        old = await _next(first)
        await asyncio.to_thread(mosquitto.restart)  # keeps the persistent session
        again = await _next(first)
        assert (again.payload, again.dup, again.connection) == (b"m1", True, old.connection + 1)
        first.ack(old)  # from the previous connection: not sent
    finally:
        first.stop()
    second = MqttSubscriber(config, max_pending=10, max_pending_bytes=1 << 20)
    second.start()
    try:
        await second.wait_subscribed(WAIT_S)
        still = await _next(second)  # the broker still holds it unacknowledged
        assert still.payload == b"m1"
        second.ack(still)
    finally:
        second.stop()


async def test_subscribers_of_one_share_group_split_the_stream(
    mosquitto: Mosquitto, publisher: Publisher, topic_prefix: str
) -> None:
    """`share_group`: an MQTT 5 shared subscription; each message goes to one of the group."""
    group = f"g{uuid.uuid4().hex[:8]}"
    subscribers = [MqttSubscriber(MqttConfig(
        mosquitto.host, mosquitto.port, f"sub-{uuid.uuid4().hex[:8]}",
        topic_prefix=topic_prefix, share_group=group), max_pending=1000,
        max_pending_bytes=1 << 20) for _ in range(2)]
    assert subscribers[0].topics[0] == f"$share/{group}/{topic_prefix}city/+/+/data"
    for subscriber in subscribers:
        subscriber.start()
    try:
        for subscriber in subscribers:
            await subscriber.wait_subscribed(WAIT_S)
        payloads = [str(i).encode() for i in range(400)]
        for i, payload in enumerate(payloads):
            publisher.client.publish(f"{topic_prefix}city/d1/aq-{i % 3}/data", payload, qos=1)
        got: list[list[bytes]] = [[], []]
        async with asyncio.timeout(WAIT_S):
            while sum(map(len, got)) < len(payloads):
                for subscriber, mine in zip(subscribers, got, strict=True):
                    batch = await subscriber.receive(0.05)
                    mine += [m.payload for m in batch]
                    subscriber.release(len(batch), sum(len(m.payload) for m in batch))
                    for message in batch:
                        subscriber.ack(message)
    finally:
        for subscriber in subscribers:
            subscriber.stop()
    assert sorted(got[0] + got[1], key=int) == payloads  # every message once, none twice
    assert got[0] and got[1]  # both took part


async def test_a_partitioned_subscriber_gets_its_districts_only(
    mosquitto: Mosquitto, publisher: Publisher, topic_prefix: str
) -> None:
    """`districts`: `city/{district}/+/data` and `/batch` of those districts, nothing else."""
    subscriber = MqttSubscriber(MqttConfig(
        mosquitto.host, mosquitto.port, f"sub-{uuid.uuid4().hex[:8]}",
        topic_prefix=topic_prefix, districts=("d1", "d3")), max_pending=1000,
        max_pending_bytes=1 << 20)
    assert subscriber.topics == [f"{topic_prefix}city/{d}/+/{kind}"
                                 for d in ("d1", "d3") for kind in ("data", "batch")]
    subscriber.start()
    try:
        await subscriber.wait_subscribed(WAIT_S)
        sent = [f"{topic_prefix}city/d{n % 4}/dev-{n}/{('data', 'batch')[n // 4 % 2]}"
                for n in range(40)]
        infos = [publisher.client.publish(topic, b"{}", qos=1) for topic in sent]
        for info in infos:
            info.wait_for_publish(WAIT_S)
        mine = [t for t in sent if t.split("/")[2] in ("d1", "d3")]
        got: list[str] = []
        async with asyncio.timeout(WAIT_S):
            while len(got) < len(mine):
                batch = await subscriber.receive(0.05)
                got += [m.topic for m in batch]
                subscriber.release(len(batch), sum(len(m.payload) for m in batch))
                subscriber.ack_all(batch)
        publisher.client.publish(f"{topic_prefix}city/d1/last/data", b"{}", qos=1).wait_for_publish(
            WAIT_S)  # a marker behind everything sent: nothing of d0/d2 came before it
        async with asyncio.timeout(WAIT_S):
            while not got or got[-1] != f"{topic_prefix}city/d1/last/data":
                batch = await subscriber.receive(0.05)
                got += [m.topic for m in batch]
                subscriber.ack_all(batch)
    finally:
        subscriber.stop()
    assert got[:-1] == mine
