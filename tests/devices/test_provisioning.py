"""`Provisioning`: what it refuses, and that a device and its MQTT credential are written
together or not at all.

The credential write is made to fail for real, inside the database (a trigger that
refuses the row, like a constraint would), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.catalogue import load_catalogue
from devices.credential_store import CredentialStore
from devices.credentials import verify_password
from devices.errors import (
    DeviceFileError,
    DuplicateDeviceError,
    InvalidDeviceError,
    RetiredDeviceError,
    UnknownDeviceError,
)
from devices.geo import Geography, parse_geography
from devices.provisioning import CHUNK, Provisioning
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore

CATALOGUE = load_catalogue()
REFUSED = "aq-refused"
HEADER = "id,type,district,lat,lon,gateway\n"
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


class Changes:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession], changes: Changes) -> Provisioning:
    return Provisioning(sessions, CATALOGUE, changes)


async def _refuse_credentials_of(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Make the database itself reject the credential row of `REFUSED`."""
    async with sessions.begin() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        for statement in _REFUSE_POSTGRES if postgres else _REFUSE_SQLITE:
            await session.execute(text(statement))


def _fields(device_id: str, **more: object) -> dict[str, object]:
    return {"id": device_id, "type": "air_quality", "district": "west", "lat": 0.5, "lon": 0.5,
            **more}


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


def _row(device_id: str, district: str = "west", gateway: str = "") -> str:
    return f"{device_id},air_quality,{district},0.5,0.5,{gateway}"


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> tuple[set[str], set[str]]:
    devices, _ = await DeviceStore(sessions).list()
    return {d.id for d in devices}, set(await CredentialStore(sessions).all())


async def _store_areas(sessions: async_sessionmaker[AsyncSession], city_geojson: dict) -> None:
    await DeviceStore(sessions).put_areas(parse_geography(city_geojson).areas())


async def test_create_writes_device_and_credential(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], changes: Changes
) -> None:
    device, password = await service.create(_fields("aq-1"))

    assert device == Device("aq-1", "air_quality", "west", 0.5, 0.5)
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})
    stored = await CredentialStore(sessions).get("aq-1")
    assert stored is not None and verify_password(password, stored.password_hash)
    assert changes.calls == 1


async def test_create_places_the_device_in_the_stored_areas(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], city_geojson: dict
) -> None:
    await _store_areas(sessions, city_geojson)
    device, _ = await service.create(_fields("aq-1", lat=1.5, lon=0.5))
    assert device.grid == "w-0-1"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (_fields("aq-2", type="rocket"), "unknown device type 'rocket'"),
        (_fields("a/b"), "bad device id 'a/b'"),
        (_fields("aq:2"), "bad device id 'aq:2': ':' at position 2 is not allowed"),
        (_fields("urbanwatch.x"), "is reserved"),
        (_fields("aq-2", district="atlantis"), "unknown district 'atlantis'"),
        (_fields("aq-2", grid="e-0-0"), "unknown grid cell 'e-0-0' in district 'west'"),
        (_fields("aq-2", lon=3.5), r"point \(0.5, 3.5\) lies in district 'east', not 'west'"),
        (_fields("aq-2", gateway="gw-9"), "unknown gateway 'gw-9'"),
        (_fields("aq-2", gateway="aq-2"), "its own gateway"),
        (_fields("aq-2", attributes={"warning-level": 1}), "attribute name 'warning-level'"),
        (_fields("aq-2", installed="soon"), "installed must be YYYY-MM-DD"),
    ],
    ids=["type", "id", "username", "reserved", "district", "grid", "point", "gateway",
         "own-gateway", "attribute", "installed"],
)
async def test_create_refuses_and_writes_nothing(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], changes: Changes,
    city_geojson: dict, fields: dict[str, object], reason: str,
) -> None:
    await _store_areas(sessions, city_geojson)
    with pytest.raises(InvalidDeviceError, match=reason):
        await service.create(fields)
    assert await _stored(sessions) == (set(), set())
    assert changes.calls == 0


async def test_an_unknown_district_is_fine_while_no_areas_are_stored(
    service: Provisioning,
) -> None:
    device, _ = await service.create(_fields("aq-1", district="atlantis"))
    assert device.district == "atlantis"


async def test_an_existing_id_writes_neither(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, first = await service.create(_fields("aq-1"))
    with pytest.raises(DuplicateDeviceError, match="'aq-1' already exists"):
        await service.create(_fields("aq-1", district="east"))
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})
    stored = await CredentialStore(sessions).get("aq-1")
    assert stored is not None and verify_password(first, stored.password_hash)


async def test_a_refused_credential_leaves_no_device_behind(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], changes: Changes
) -> None:
    await service.create(_fields("aq-1"))
    await _refuse_credentials_of(sessions)
    with pytest.raises(DBAPIError, match="credential refused"):
        await service.create(_fields(REFUSED))
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})
    assert changes.calls == 1


async def test_a_refused_credential_undoes_the_whole_import(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await service.create(_fields("aq-1"))
    await _refuse_credentials_of(sessions)
    with pytest.raises(DBAPIError, match="credential refused"):
        await service.import_many(_csv(_row("aq-1", "east"), _row(REFUSED)), ".csv", source="f")
    assert await _stored(sessions) == ({"aq-1"}, {"aq-1"})
    assert (await DeviceStore(sessions).get("aq-1")) == Device(
        "aq-1", "air_quality", "west", 0.5, 0.5)


async def test_import_issues_credentials_only_to_devices_without(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], changes: Changes
) -> None:
    await service.create(_fields("aq-1"))
    result = await service.import_many(_csv(_row("aq-1"), _row("aq-2")), ".csv", source="f")
    assert (result.new, result.updated, set(result.passwords), result.areas) == (
        1, 1, {"aq-2"}, 0)
    assert await _stored(sessions) == ({"aq-1", "aq-2"}, {"aq-1", "aq-2"})
    assert changes.calls == 2


async def test_import_refuses_every_bad_device_and_writes_nothing(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], city_geojson: dict,
    changes: Changes,
) -> None:
    await _store_areas(sessions, city_geojson)
    await service.create(_fields("gw-1"))
    rows = [_row("aq-1", gateway="gw-1"), _row("aq-2", gateway="aq-1"), _row("urbanwatch.3"),
            _row("aq-4", "atlantis"), _row("aq-5", gateway="gw-9"), _row("aq-6", gateway="aq-6")]
    with pytest.raises(DeviceFileError) as refused:
        await service.import_many(_csv(*rows), ".csv", source="devices.csv")
    assert refused.value.path == "devices.csv"
    assert refused.value.problems == [
        "device urbanwatch.3: 'urbanwatch.3' cannot be a device's MQTT username "
        "(urbanwatch.* is reserved)",
        "device aq-4: unknown district 'atlantis'",
        "device aq-5: unknown gateway 'gw-9'",
        "device aq-6: a device cannot be its own gateway",
    ]
    assert await _stored(sessions) == ({"gw-1"}, {"gw-1"})
    assert changes.calls == 1


async def test_import_locates_in_the_stored_areas_and_the_given_ones(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], city_geojson: dict
) -> None:
    city = parse_geography(city_geojson)
    await DeviceStore(sessions).put_areas(city.districts[:1])  # west only, no cells
    east = Geography.build(a for a in city.areas() if "east" in (a.id, a.district))
    data = _csv("aq-1,air_quality,west,0.5,0.5,", "aq-2,air_quality,,0.5,2.5,")

    result = await service.import_many(data, ".csv", source="f", areas=east)

    assert result.areas == len(east.areas())
    assert [(d.district, d.grid) for d in (await DeviceStore(sessions).list())[0]] == [
        ("west", ""), ("east", "e-0-0")]
    assert len(await DeviceStore(sessions).list_areas()) == 1 + len(east.areas())


async def test_an_import_of_many_chunks_is_all_or_nothing(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], city_geojson: dict
) -> None:
    """A failure in a late chunk must not leave earlier chunks' logins, whose passwords the
    failed import never showed anyone."""
    await _refuse_credentials_of(sessions)
    ids = [f"aq-{i}" for i in range(2 * CHUNK + 500)]
    ids[2 * CHUNK + 200] = REFUSED
    progress: list[tuple[int, int]] = []
    with pytest.raises(DBAPIError, match="credential refused"):
        await service.import_many(_csv(*map(_row, ids)), ".csv", source="f",
                                  on_progress=lambda n, total: progress.append((n, total)))
    assert progress == [(CHUNK, len(ids))] * 2  # two chunks were written before the failure...
    assert await _stored(sessions) == (set(), set())  # ...and rolled back with it
    with pytest.raises(DBAPIError, match="credential refused"):
        await service.import_many(_csv(*map(_row, ids)), ".csv", source="f",
                                  areas=parse_geography(city_geojson))
    assert await DeviceStore(sessions).list_areas() == []  # the areas went with them
    del ids[2 * CHUNK + 200]
    result = await service.import_many(_csv(*map(_row, ids)), ".csv", source="f")
    assert (result.new, result.updated, len(result.passwords)) == (len(ids), 0, len(ids))


async def test_update_keeps_what_is_left_out_and_locates_a_new_district(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], city_geojson: dict,
    changes: Changes,
) -> None:
    await _store_areas(sessions, city_geojson)
    await service.create(_fields("aq-1", department="eb", attributes={"warning_level": 3}))

    moved = await service.update("aq-1", {"district": "east", "lon": 2.5})

    assert (moved.district, moved.grid, moved.lon) == ("east", "e-0-0", 2.5)
    assert (moved.department, dict(moved.attributes)) == ("eb", {"warning_level": 3.0})
    assert await DeviceStore(sessions).get("aq-1") == moved
    assert changes.calls == 2


@pytest.mark.parametrize(
    ("device_id", "changes_", "error", "reason"),
    [
        ("nope", {"department": "x"}, UnknownDeviceError, "no device 'nope'"),
        ("aq-1", {"type": "noise"}, InvalidDeviceError, "type cannot be changed"),
        ("aq-1", {"id": "aq-2"}, InvalidDeviceError, "id cannot be changed"),
        ("aq-1", {"district": "atlantis"}, InvalidDeviceError, "unknown district 'atlantis'"),
        ("aq-1", {"gateway": "gw-9"}, InvalidDeviceError, "unknown gateway 'gw-9'"),
        ("aq-1", {"status": "exploded"}, InvalidDeviceError, "unknown status 'exploded'"),
    ],
    ids=["unknown-device", "type", "id", "district", "gateway", "status"],
)
async def test_update_refuses(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], city_geojson: dict,
    device_id: str, changes_: dict[str, object], error: type[Exception], reason: str,
) -> None:
    await _store_areas(sessions, city_geojson)
    device, _ = await service.create(_fields("aq-1"))
    with pytest.raises(error, match=reason):
        await service.update(device_id, changes_)
    assert await DeviceStore(sessions).get("aq-1") == device


async def test_retire_then_rotation_is_refused(
    service: Provisioning, sessions: async_sessionmaker[AsyncSession], changes: Changes
) -> None:
    _, first = await service.create(_fields("aq-1"))
    second = await service.rotate_credentials("aq-1")
    stored = await CredentialStore(sessions).get("aq-1")
    assert second != first and stored is not None
    assert verify_password(second, stored.password_hash)

    assert (await service.retire("aq-1")).status == DeviceStatus.RETIRED
    with pytest.raises(RetiredDeviceError, match="'aq-1' is retired"):
        await service.rotate_credentials("aq-1")
    with pytest.raises(UnknownDeviceError, match="no device 'nope'"):
        await service.rotate_credentials("nope")
    with pytest.raises(UnknownDeviceError, match="no device 'nope'"):
        await service.retire("nope")
    assert changes.calls == 3


async def test_revoke_keeps_the_row_with_its_time(
    service: Provisioning, changes: Changes
) -> None:
    await service.create(_fields("aq-1"))
    assert not (await service.revoke_credentials("aq-1")).active
    assert changes.calls == 2
