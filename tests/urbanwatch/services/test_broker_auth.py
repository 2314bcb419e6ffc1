"""Device identity at the real broker: logins and ACLs rendered from SQL, reloaded by SIGHUP.

Every test runs its own secured Mosquitto (`secured_mosquitto`), managed through
`sync_broker_auth` exactly as the platform and the CLI do it, with MQTT 5 clients
so that refusals carry their reason codes.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.context import ApiContext, TokenPolicy
from api.security.principal import Role
from devices.catalogue import load_catalogue
from devices.credential_store import CredentialStore
from devices.credentials import hash_password, verify_password
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from tests.support.auth import SECRET, bearer
from tests.support.mqtt5 import NOT_AUTHORIZED, Client, accepted, received_so_far
from tests.support.polling import eventually
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.services.broker_auth import platform_logins, sync_broker_auth
from urbanwatch.services.mosquitto import MAX_PACKET_BYTES, Mosquitto
from urbanwatch.settings import Settings

DEVICES = [
    Device("aq-1", "air_quality", "d1", 39.9, 116.4),
    Device("aq-2", "air_quality", "d1", 39.9, 116.4),
    Device("gw-1", "weather", "d2", 39.9, 116.4),
    Device("aq-3", "air_quality", "d2", 39.9, 116.4, gateway="gw-1"),
]


@dataclass
class City:
    broker: Mosquitto
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    passwords: dict[str, str]
    prefix: str

    def topic(self, district: str, device_id: str, kind: str = "data") -> str:
        return f"{self.prefix}city/{district}/{device_id}/{kind}"

    def device(self, device_id: str) -> Client:
        return Client(self.broker.port, device_id, self.passwords[device_id])

    def platform(self, role: str) -> Client:
        login = platform_logins(self.broker.origin)[role]
        return Client(self.broker.port, login.username, login.password)

    async def sync(self) -> bool:
        return await sync_broker_auth(self.settings, self.sessions)


@pytest.fixture
async def city(
    secured_mosquitto: Mosquitto, tmp_path: Path, topic_prefix: str
) -> AsyncIterator[City]:
    settings = Settings(
        state_dir=tmp_path, mqtt={"port": secured_mosquitto.port, "topic_prefix": topic_prefix}
    )
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    sessions = create_session_factory(engine)
    await DeviceStore(sessions).add(DEVICES)
    passwords = await CredentialStore(sessions).issue(d.id for d in DEVICES)
    built = City(secured_mosquitto, settings, sessions, passwords, topic_prefix)
    assert await built.sync()
    await eventually(lambda: _admitted(built.device("aq-1")), "the broker to load its users")
    yield built
    await engine.dispose()


def _admitted(client: Client) -> bool:
    accepted = not client.connect().is_failure
    client.close()
    return accepted


def test_python_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "s3cret"], check=True)
    theirs = path.read_text().strip().split(":", 1)[1]
    _, kind, iterations, salt, _ = theirs.split("$")

    ours = hash_password("s3cret", salt=base64.b64decode(salt), iterations=int(iterations))

    assert kind == "7" and ours == theirs
    assert verify_password("s3cret", theirs) and not verify_password("wrong", theirs)


async def test_anonymous_clients_are_refused(city: City) -> None:
    assert Client(city.broker.port).connect().value == NOT_AUTHORIZED


async def test_a_wrong_password_is_refused_at_connect(city: City) -> None:
    reason = Client(city.broker.port, "aq-1", city.passwords["aq-2"]).connect()
    assert reason.value == NOT_AUTHORIZED
    unknown = Client(city.broker.port, "nobody", "x").connect()
    assert unknown.value == NOT_AUTHORIZED


async def test_a_device_publishes_only_under_its_own_topic(city: City) -> None:
    ingest = city.platform("ingest")
    assert not ingest.connect().is_failure
    ingest.subscribe(f"{city.prefix}city/#")
    device = city.device("aq-1")
    assert not device.connect().is_failure
    try:
        assert device.publish(city.topic("d1", "aq-2"), b"forged") == NOT_AUTHORIZED
        assert device.publish(city.topic("d2", "aq-1"), b"wrong district") == NOT_AUTHORIZED
        assert device.publish("city/d1/aq-1/data", b"outside the prefix") == NOT_AUTHORIZED
        assert accepted(device.publish(city.topic("d1", "aq-1"), b"mine"))

        delivered = received_so_far(ingest, f"{city.prefix}deadletter/aq-1")
        assert delivered == [(city.topic("d1", "aq-1"), b"mine")]
    finally:
        device.close()
        ingest.close()


async def test_a_gateway_also_publishes_for_its_children(city: City) -> None:
    gateway = city.device("gw-1")
    assert not gateway.connect().is_failure
    try:
        assert accepted(gateway.publish(city.topic("d2", "gw-1", "batch")))
        assert accepted(gateway.publish(city.topic("d2", "aq-3")))
        assert gateway.publish(city.topic("d1", "aq-1")) == NOT_AUTHORIZED  # not its child
    finally:
        gateway.close()


async def test_a_device_writes_only_its_data_and_batch_topics(city: City) -> None:
    ingest, device = city.platform("ingest"), city.device("aq-1")
    for client in (ingest, device):
        assert not client.connect().is_failure
    ingest.subscribe(f"{city.prefix}city/#")
    try:
        for kind in ("status", "data/extra", "cmd"):
            assert device.publish(city.topic("d1", "aq-1", kind), b"elsewhere") == NOT_AUTHORIZED
        assert accepted(device.publish(city.topic("d1", "aq-1", "batch"), b"[]"))
        delivered = received_so_far(ingest, f"{city.prefix}deadletter/aq-1")
        assert delivered == [(city.topic("d1", "aq-1", "batch"), b"[]")]
    finally:
        device.close()
        ingest.close()


async def test_an_oversized_packet_disconnects_its_sender_and_nothing_else(city: City) -> None:
    ingest, big, steady = city.platform("ingest"), city.device("aq-1"), city.device("aq-2")
    for client in (ingest, big, steady):
        assert not client.connect().is_failure
    ingest.subscribe(f"{city.prefix}city/#")
    try:
        assert accepted(steady.publish(city.topic("d1", "aq-2"), b"before"))
        big.send(city.topic("d1", "aq-1"), b"x" * MAX_PACKET_BYTES)
        assert big.disconnected.wait(10), "the broker kept a client sending an oversized packet"
        assert accepted(steady.publish(city.topic("d1", "aq-2"), b"after"))
        delivered = received_so_far(ingest, f"{city.prefix}deadletter/aq-2")
        assert delivered == [(city.topic("d1", "aq-2"), b"before"),
                             (city.topic("d1", "aq-2"), b"after")]
    finally:
        for client in (ingest, big, steady):
            client.close()


async def test_a_retained_publish_is_refused_and_not_kept(city: City) -> None:
    device = city.device("aq-1")
    assert not device.connect().is_failure
    device.send(city.topic("d1", "aq-1"), b"stays?", retain=True)
    assert device.disconnected.wait(10), "the broker accepted a retained message"
    device.close()
    ingest = city.platform("ingest")  # subscribes after it: a kept message would come now
    assert not ingest.connect().is_failure
    try:
        ingest.subscribe(f"{city.prefix}city/#")
        assert received_so_far(ingest, f"{city.prefix}deadletter/aq-1") == []
    finally:
        ingest.close()


async def test_platform_users_get_only_what_they_need(city: City) -> None:
    ingest, dispatch, simulator = (city.platform(r) for r in ("ingest", "dispatch", "simulator"))
    for client in (ingest, dispatch, simulator):
        assert not client.connect().is_failure
    try:
        assert accepted(ingest.publish(f"{city.prefix}deadletter/aq-1"))
        assert ingest.publish(city.topic("d1", "aq-1")) == NOT_AUTHORIZED
        assert accepted(dispatch.publish(f"{city.prefix}dispatch/fire-rescue"))
        assert dispatch.publish(city.topic("d1", "aq-1")) == NOT_AUTHORIZED
        assert accepted(simulator.publish(city.topic("d9", "any-device")))
        assert simulator.publish(f"{city.prefix}dispatch/fire-rescue") == NOT_AUTHORIZED
        dispatch.subscribe(f"{city.prefix}city/#")  # granted by nobody: SUBACK, no messages
        assert accepted(simulator.publish(city.topic("d1", "aq-1")))
        assert received_so_far(dispatch, f"{city.prefix}dispatch/fire-rescue") == []
    finally:
        for client in (ingest, dispatch, simulator):
            client.close()


@pytest.mark.parametrize("how", ["retired", "revoked"])
async def test_a_cut_off_device_is_disconnected_without_a_broker_restart(
    city: City, how: str
) -> None:
    device, other = city.device("aq-1"), city.device("aq-2")
    assert not device.connect().is_failure and not other.connect().is_failure
    pid = city.broker.pid
    if how == "retired":
        await DeviceStore(city.sessions).set_status("aq-1", DeviceStatus.RETIRED)
    else:
        await CredentialStore(city.sessions).revoke("aq-1")

    assert await city.sync()

    await eventually(device.disconnected.is_set, "the broker to disconnect the device")
    device.close()
    assert city.device("aq-1").connect().value == NOT_AUTHORIZED
    assert city.broker.pid == pid and city.broker.is_running()
    try:  # everybody else stays connected and admitted
        assert not other.disconnected.is_set()
        assert accepted(other.publish(city.topic("d1", "aq-2")))
    finally:
        other.close()


async def test_rotation_replaces_the_password(city: City) -> None:
    new = (await CredentialStore(city.sessions).issue(["aq-2"]))["aq-2"]
    assert await city.sync()
    assert not await city.sync()  # nothing changed: no rewrite, no reload

    await eventually(
        lambda: Client(city.broker.port, "aq-2", city.passwords["aq-2"]).connect().is_failure,
        "the old password to stop working",
    )
    assert _admitted(Client(city.broker.port, "aq-2", new))


async def test_devices_provisioned_and_retired_through_the_api(
    city: City, influx_db: InfluxClient
) -> None:
    """The API's `on_devices_changed` (wired as in the platform) admits and cuts off devices."""
    context = ApiContext(
        sessions=city.sessions, influx=influx_db, catalogue=load_catalogue(),
        tokens=TokenPolicy(SECRET),
        on_devices_changed=city.sync,
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers=bearer(Role.operator)) as api:
        created = await api.post("/api/v1/devices", json={
            "id": "wl-9", "type": "water_level", "district": "d3", "lat": 39.9, "lon": 116.4})
        assert created.status_code == 201, created.text
        login = created.json()["mqtt"]
        device = Client(city.broker.port, login["username"], login["password"])
        await eventually(lambda: not device.connect().is_failure, "the new device to be admitted")
        assert accepted(device.publish(city.topic("d3", "wl-9")))
        assert device.publish(city.topic("d1", "aq-1")) == NOT_AUTHORIZED

        retired = await api.post("/api/v1/devices/wl-9/retire")

    assert retired.status_code == 200
    await eventually(device.disconnected.is_set, "the retired device to be disconnected")
    device.close()
