"""One receiver cannot block the dispatcher: tarpits, endless answers and invalid targets.

Real local HTTP servers (a raw-socket tarpit beside the healthy `receiver`), a real outbox on
each SQL backend, the real broker for the MQTT channel.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from alerts.channels.dispatcher import Dispatcher, RetryPolicy
from alerts.channels.mqtt import MqttChannel
from alerts.channels.webhook import WebhookChannel
from alerts.decisions.notify import Message
from alerts.sql import outbox
from tests.alerts.conftest import T0, Receiver
from tests.support.polling import eventually
from urbanwatch.services.mosquitto import Mosquitto

SECRET_ENV = "HOOK_SECRET"
SLOW = RetryPolicy(base_ms=60_000, max_delay_ms=60_000, give_up_after_ms=3_600_000)
DEADLINE_S = 3.0  # far above what the healthy delivery needs; the tarpit never answers in time


@dataclass
class Tarpit:
    """Accepts, reads the request, then answers per `mode`: "silent" (never), "dribble" (a
    status line and then one body byte every 0.1 s) or "flood" (200 with an endless body)."""

    mode: str
    sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    closed_at: list[float] = field(default_factory=list)  # when each connection ended
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                if self.mode == "dribble":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                elif self.mode == "flood":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                while not self.stopping.is_set():
                    if self.mode == "flood":
                        conn.sendall(b"x" * 65536)
                        continue
                    if self.mode == "dribble":
                        conn.sendall(b"x")
                    conn.settimeout(0.1)
                    try:
                        if conn.recv(1) == b"":
                            break  # the client gave up
                    except TimeoutError:
                        pass
            except OSError:
                pass  # the client closed the connection
        self.closed_at.append(time.monotonic())


@pytest.fixture
def tarpit(request: pytest.FixtureRequest) -> Iterator[Tarpit]:
    pit = Tarpit(request.param)
    thread = threading.Thread(target=pit.serve, daemon=True)
    thread.start()
    yield pit
    pit.stopping.set()
    thread.join(5)
    pit.sock.close()


def message(key: str, team: str, target: str, channel: str = "webhook") -> Message:
    return Message(key, channel, target, "application/json", json.dumps({"key": key}), team,
                   "dispatched", None, SECRET_ENV)


async def seed(sessions, *messages: Message) -> None:
    async with sessions.begin() as session:
        await outbox.enqueue(session, list(messages), T0)


async def row_of(sessions, key: str):
    async with sessions() as session:
        [row] = await outbox.rows(session, key=key)
    return row


def webhook() -> WebhookChannel:
    # the per-read timeout is long: only the overall deadline can end a dribbling answer
    return WebhookChannel(secrets={SECRET_ENV: "s"}, timeout_s=60.0, deadline_s=DEADLINE_S)


@pytest.mark.parametrize("tarpit", ["silent", "dribble"], indirect=True)
async def test_a_tarpit_team_does_not_hold_up_another_team(
    sessions, receiver: Receiver, tarpit: Tarpit,
) -> None:
    await seed(sessions, message("stuck", "slow-team", tarpit.url),
               message("fine", "good-team", receiver.url))
    channel = webhook()
    dispatcher = Dispatcher(sessions, {"webhook": channel}, retry=SLOW, poll_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        async def delivered() -> bool:
            return (await row_of(sessions, "fine")).status == "delivered"

        await eventually(delivered, "the healthy team's row delivered")
        delivered_at = time.monotonic()

        async def retrying() -> bool:
            return (await row_of(sessions, "stuck")).attempts == 1

        await eventually(retrying, "the tarpit attempt ended", timeout_s=60)
    finally:
        stop.set()
        await task
        await channel.aclose()
    stuck = await row_of(sessions, "stuck")
    assert tarpit.closed_at and delivered_at < tarpit.closed_at[0]  # while the tarpit held on
    assert stuck.status == "pending" and stuck.next_attempt_ms > T0
    assert f"no complete answer from http://127.0.0.1/… within {DEADLINE_S:g} s" in str(
        stuck.last_error)
    assert [c.headers["idempotency-key"] for c in receiver.calls] == ["fine"]


@pytest.mark.parametrize("tarpit", ["flood"], indirect=True)
async def test_an_endless_answer_is_read_only_up_to_the_cap(sessions, tarpit: Tarpit) -> None:
    await seed(sessions, message("flooded", "team", tarpit.url))
    channel = webhook()
    try:
        assert await Dispatcher(sessions, {"webhook": channel}, retry=SLOW).drain_once() == 1
    finally:
        await channel.aclose()
    row = await row_of(sessions, "flooded")
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)


@pytest.mark.parametrize(("target", "reason"), [
    ("not a url", "webhook URL … is not http(s)://host/…"),
    ("ftp://files.example/hook", "webhook URL … is not http(s)://host/…"),
    ("http://[::1/hook", "invalid webhook URL …"),
], ids=["no-scheme", "ftp", "broken-host"])
async def test_an_invalid_webhook_url_fails_its_row_with_the_reason(
    sessions, receiver: Receiver, target: str, reason: str,
) -> None:
    await seed(sessions, message("bad", "team-a", target), message("good", "team-b", receiver.url))
    channel = webhook()
    try:
        assert await Dispatcher(sessions, {"webhook": channel}, retry=SLOW).drain_once() == 2
    finally:
        await channel.aclose()
    bad, good = await row_of(sessions, "bad"), await row_of(sessions, "good")
    assert (bad.status, bad.attempts, bad.last_error) == ("failed", 1, reason)
    assert good.status == "delivered"


async def test_an_invalid_mqtt_topic_fails_its_row_with_the_reason(
    sessions, mosquitto: Mosquitto,
) -> None:
    await seed(sessions, message("wild", "team-a", "dispatch/#", channel="mqtt"),
               message("tame", "team-b", "dispatch/team-b", channel="mqtt"))
    channel = MqttChannel(mosquitto.host, mosquitto.port, prefix="faults/")
    await channel.start()
    try:
        assert await Dispatcher(sessions, {"mqtt": channel}, retry=SLOW).drain_once() == 2
    finally:
        await channel.aclose()
    wild, tame = await row_of(sessions, "wild"), await row_of(sessions, "tame")
    assert (wild.status, wild.attempts) == ("failed", 1)
    assert wild.last_error.startswith("invalid topic 'faults/dispatch/#'")
    assert tame.status == "published"  # the broker took it; MQTT has no receiver's confirmation
