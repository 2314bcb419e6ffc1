"""A team's MQTT login on the managed broker: its own dispatch topics, nothing else, and what
was dispatched while it was away once it comes back with a persistent session.

A real secured Mosquitto, managed through `sync_broker_auth` as the platform does, and the
platform's MQTT dispatch channel with its own login. Mosquitto denies silently on MQTT 3.1.1
(a refused subscription still gets a SUBACK), so refusals are asserted by what arrives: a
sentinel published last on the team's own topic proves everything before it was delivered.
"""

from __future__ import annotations

import json
import queue
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.mqtt import MqttChannel
from alerts.errors import UnknownTeamError
from alerts.routing import load_routing
from alerts.sql.outbox import Delivery, Status
from alerts.sql.team_logins import TeamLogin, TeamLogins
from tests.support.polling import eventually
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.services.broker_auth import platform_logins, sync_broker_auth
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.settings import Settings

TEAM, OTHER = "gas-emergency", "ecc-duty"


@dataclass
class Broker:
    mosquitto: Mosquitto
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def broker(secured_mosquitto: Mosquitto, tmp_path: Path, topic_prefix: str
                 ) -> AsyncIterator[Broker]:
    settings = Settings(
        state_dir=tmp_path, mqtt={"port": secured_mosquitto.port, "topic_prefix": topic_prefix}
    )
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    yield Broker(secured_mosquitto, settings, create_session_factory(engine))
    await engine.dispose()


class TeamClient:
    """The team's own system: MQTT 3.1.1, persistent session, QoS 1."""

    def __init__(self, broker: Broker, login: TeamLogin) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"team-{TEAM}",
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.username_pw_set(login.username, login.password)
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))
        self.port = broker.mosquitto.port

    def connect(self) -> mqtt.ReasonCode:
        connected: queue.Queue[mqtt.ReasonCode] = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, reason, _p: connected.put(reason)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        reason = connected.get(timeout=10)
        if reason.is_failure:
            self.disconnect()
        return reason

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)

    def until(self, topic: str) -> list[str]:
        """The topics received up to and including `topic`."""
        seen: list[str] = []
        while not seen or seen[-1] != topic:
            seen.append(self.received.get(timeout=10)[0])
        return seen


@pytest.fixture
def team_client() -> Iterator[list[TeamClient]]:
    made: list[TeamClient] = []
    yield made
    for client in made:
        client.disconnect()


async def admitted_team(broker: Broker, team_client: list[TeamClient]) -> TeamClient:
    """The team with a new login, connected once the broker admits it."""
    login = await TeamLogins(broker.sessions).issue(TEAM, load_routing())
    await sync_broker_auth(broker.settings, broker.sessions)
    team = TeamClient(broker, login)
    team_client.append(team)
    await eventually(lambda: not team.connect().is_failure, "the broker to admit the team")
    return team


def delivery(n: int, team_id: str) -> Delivery:
    return Delivery(n, f"key-{n}", "mqtt", f"dispatch/{team_id}", "application/json",
                    json.dumps({"n": n}).encode(), team_id, "dispatched", None, None, 0, 0)


async def test_a_team_reads_its_own_dispatches_including_those_sent_while_away(
    broker: Broker, team_client: list[TeamClient], topic_prefix: str
) -> None:
    login = await TeamLogins(broker.sessions).issue(TEAM, load_routing())
    assert login.username == f"urbanwatch.team.{TEAM}"
    assert await sync_broker_auth(broker.settings, broker.sessions)
    team = TeamClient(broker, login)
    team_client.append(team)
    await eventually(lambda: not team.connect().is_failure, "the broker to admit the team")
    for topic in (f"dispatch/{TEAM}/#", "dispatch/#", "city/#", f"dispatch/{OTHER}/#"):
        team.client.subscribe(topic_prefix + topic, qos=1)  # only the first is allowed
    dispatch = platform_logins(broker.mosquitto.origin)["dispatch"]
    channel = MqttChannel("127.0.0.1", broker.mosquitto.port, prefix=topic_prefix,
                          username=dispatch.username, password=dispatch.password)
    await channel.start()
    try:
        assert await channel.send(delivery(1, TEAM)) is Status.PUBLISHED
        assert team.until(f"{topic_prefix}dispatch/{TEAM}") == [f"{topic_prefix}dispatch/{TEAM}"]
        team.disconnect()  # away; its session and subscriptions stay at the broker
        assert await channel.send(delivery(2, OTHER)) is Status.PUBLISHED
        assert await channel.send(delivery(3, TEAM)) is Status.PUBLISHED  # while away
        assert not team.connect().is_failure  # back, same client id, clean_session=False
        assert json.loads(team.received.get(timeout=10)[1]) == {"n": 3}
        await channel.send(delivery(4, TEAM))  # the sentinel: nothing else came before it
        assert team.until(f"{topic_prefix}dispatch/{TEAM}") == [f"{topic_prefix}dispatch/{TEAM}"]
    finally:
        await channel.aclose()


async def test_a_team_cannot_publish_to_its_dispatch_topic(
    broker: Broker, team_client: list[TeamClient], topic_prefix: str
) -> None:
    """A team reads; it cannot forge a dispatch for itself or anyone else."""
    team = await admitted_team(broker, team_client)
    team.client.subscribe(f"{topic_prefix}dispatch/{TEAM}/#", qos=1)
    team.client.publish(f"{topic_prefix}dispatch/{TEAM}", b"forged", qos=1).wait_for_publish(10)
    dispatch = platform_logins(broker.mosquitto.origin)["dispatch"]
    channel = MqttChannel("127.0.0.1", broker.mosquitto.port, prefix=topic_prefix,
                          username=dispatch.username, password=dispatch.password)
    await channel.start()
    try:
        await channel.send(delivery(1, TEAM))
        assert json.loads(team.received.get(timeout=10)[1]) == {"n": 1}  # not b"forged"
    finally:
        await channel.aclose()


@pytest.mark.parametrize("team_id", ["nobody", "gas emergency", "dispatch/#", "a\nuser x"],
                         ids=["unknown", "space", "wildcard", "newline"])
async def test_a_login_only_for_a_team_of_the_routing_file(broker: Broker, team_id: str) -> None:
    with pytest.raises(UnknownTeamError, match="no team"):
        await TeamLogins(broker.sessions).issue(team_id, load_routing())
    assert await TeamLogins(broker.sessions).users() == []


async def test_a_revoked_login_is_refused_by_the_broker(
    broker: Broker, team_client: list[TeamClient]
) -> None:
    team = await admitted_team(broker, team_client)
    team.disconnect()

    assert await TeamLogins(broker.sessions).revoke(TEAM)
    assert not await TeamLogins(broker.sessions).revoke(TEAM)  # nothing left to drop
    assert await sync_broker_auth(broker.settings, broker.sessions)
    assert team.connect().is_failure
