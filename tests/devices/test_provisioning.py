"""`Provisioner`: a device and its MQTT credential are written together or not at all.

The credential write is made to fail for real, inside the database (a trigger that
refuses the row, like a constraint would) or in the credential store's own checks,
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.credential_store import CredentialStore
from devices.credentials import verify_password
from devices.errors import RegistryError
from devices.geo import Area
from devices.provisioning import CHUNK, Provisioner
from devices.registry import Device
from devices.store import DeviceStore

REFUSED = "aq-refused"
_REFUSE_SQLITE = [
    f"""CREATE TRIGGER refuse_credential BEFORE INSERT ON device_credentials
    WHEN NEW.device_id = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'credential refused'); END"""
]
_REFUSE_POSTGRES = [
    f"""CREATE FUNCTION refuse_credential() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.device_id = '{REFUSED}' THEN RAISE EXCEPTION 'credential refused'; END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER refuse_credential BEFORE INSERT ON device_credentials
    FOR EACH ROW EXECUTE FUNCTION refuse_credential()""",
]


async def _refuse_credentials_of(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Make the database itself reject the credential row of `REFUSED`."""
    async with sessions.begin() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        for statement in _REFUSE_POSTGRES if postgres else _REFUSE_SQLITE:
            await session.execute(text(statement))


def _device(device_id: str) -> Device:
    return Device(id=device_id, type="air_quality", district="west", lat=31.0, lon=121.0)


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> tuple[set[str], set[str]]:
    devices, _ = await DeviceStore(sessions).list()
    return {d.id for d in devices}, set(await CredentialStore(sessions).all())


async def test_add_writes_device_and_credential(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    passwords = await Provisioner(sessions).add([_device("aq-1"), _device("aq-2")])
    assert set(passwords) == {"aq-1", "aq-2"}
    assert await _stored(sessions) == ({"aq-1", "aq-2"}, {"aq-1", "aq-2"})
    stored = await CredentialStore(sessions).get("aq-1")
    assert stored is not None and verify_password(passwords["aq-1"], stored.password_hash)


async def test_a_refused_credential_leaves_no_device_behind(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await Provisioner(sessions).add([_device("aq-1")])
    await _refuse_credentials_of(sessions)
    with pytest.raises(DBAPIError, match="credential refused"):
        await Provisioner(sessions).add([_device("aq-2"), _device(REFUSED)])
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})


async def test_a_refused_credential_undoes_the_whole_import(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await Provisioner(sessions).add([_device("aq-1")])
    await _refuse_credentials_of(sessions)
    replaced = Device(id="aq-1", type="air_quality", district="east", lat=31.0, lon=121.0)
    with pytest.raises(DBAPIError, match="credential refused"):
        await Provisioner(sessions).upsert([replaced, _device(REFUSED)])
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})
    assert (await DeviceStore(sessions).get("aq-1")) == _device("aq-1")


async def test_an_id_the_broker_cannot_take_leaves_no_device_behind(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RegistryError, match="MQTT username"):
        await Provisioner(sessions).add([_device("aq-1"), _device("aq:2")])
    assert await _stored(sessions) == (set(), set())


async def test_an_existing_id_writes_neither(sessions: async_sessionmaker[AsyncSession]) -> None:
    first = await Provisioner(sessions).add([_device("aq-1")])
    with pytest.raises(RegistryError, match="already exist"):
        await Provisioner(sessions).add([_device("aq-2"), _device("aq-1")])
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})
    stored = await CredentialStore(sessions).get("aq-1")
    assert stored is not None and verify_password(first["aq-1"], stored.password_hash)


async def test_upsert_issues_credentials_only_to_devices_without(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await Provisioner(sessions).add([_device("aq-1")])
    inserted, updated, passwords = await Provisioner(sessions).upsert(
        [_device("aq-1"), _device("aq-2")]
    )
    assert (inserted, updated, set(passwords)) == (1, 1, {"aq-2"})
    assert await _stored(sessions) == ({"aq-1", "aq-2"}, {"aq-1", "aq-2"})


async def test_an_import_of_many_chunks_is_all_or_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A failure in a late chunk must not leave earlier chunks' logins, whose passwords the
    failed import never showed anyone."""
    await _refuse_credentials_of(sessions)
    devices = [_device(f"aq-{i}") for i in range(2 * CHUNK + 500)]
    devices[2 * CHUNK + 200] = _device(REFUSED)
    progress: list[int] = []
    with pytest.raises(DBAPIError, match="credential refused"):
        await Provisioner(sessions).upsert(devices, progress.append)
    assert progress == [CHUNK, CHUNK]  # two chunks were written before the failure...
    assert await _stored(sessions) == (set(), set())  # ...and rolled back with it
    square = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0))
    with pytest.raises(DBAPIError, match="credential refused"):
        await Provisioner(sessions).upsert(devices, areas=[Area("west", "West", "district",
                                                                "west", (square,))])
    assert await DeviceStore(sessions).list_areas() == []  # the areas went with them
    del devices[2 * CHUNK + 200]
    new, updated, passwords = await Provisioner(sessions).upsert(devices, progress.append)
    assert (new, updated, len(passwords)) == (len(devices), 0, len(devices))
    assert progress[2:] == [CHUNK, CHUNK, 499]
