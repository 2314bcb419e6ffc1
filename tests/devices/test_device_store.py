"""`DeviceStore` and migrations, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from devices.catalogue import load_catalogue
from devices.errors import RegistryError
from devices.geo import parse_geography
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from urbanwatch.database import alembic_config, create_engine, create_session_factory, migrate


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db_url: str, clock: Clock) -> AsyncIterator[DeviceStore]:
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        yield DeviceStore(create_session_factory(engine), clock)
    finally:
        await engine.dispose()


def _device(i: int, **changes: object) -> Device:
    fields: dict = {
        "id": f"aq-{i:04d}",
        "type": "air_quality",
        "district": "west" if i % 2 else "east",
        "lat": 31.0 + i / 1000,
        "lon": 121.0 + i / 1000,
    }
    return Device(**(fields | changes))


async def test_migrate_is_idempotent_and_creates_tables(db_url: str) -> None:
    await migrate(db_url)
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()
    assert {"devices", "areas", "alembic_version"} <= tables
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == head


async def test_add_and_get_round_trip(store: DeviceStore) -> None:
    full = _device(
        1,
        grid="w-0-0",
        department="env-bureau",
        status=DeviceStatus.MAINTENANCE,
        installed=date(2023, 5, 17),
        gateway="gw-1",
        lat=31.123456789,
        lon=121.987654321,
        attributes={"warning_level": 3.25, "historical_max_level": 5.123456789012},
    )
    await store.add([full, _device(2)])
    assert await store.get(full.id) == full
    assert await store.get("aq-0002") == _device(2)
    assert await store.get("nope") is None


async def test_attributes_are_replaced_by_upsert(store: DeviceStore) -> None:
    await store.add([_device(1, attributes={"free_flow_kmh": 60.0})])
    await store.upsert([_device(1, attributes={"warning_level": 2.0}), _device(2)])
    assert (await store.get("aq-0001")).attributes == {"warning_level": 2.0}  # type: ignore[union-attr]
    assert (await store.get("aq-0002")).attributes == {}  # type: ignore[union-attr]
    registry = await store.load_registry(load_catalogue())
    assert registry.attributes() == {"aq-0001": {"warning_level": 2.0}}


async def test_devices_stored_before_attributes_existed_have_none(db_url: str) -> None:
    def upgrade_to_0004(connection: object) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")

    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0004)
            await conn.execute(text(
                "INSERT INTO devices (id, type, district, grid, lat, lon, department, status,"
                " created_ms, updated_ms) VALUES ('wl-1', 'water_level', 'west', '', 1, 2, '',"
                " 'active', 0, 0)"))
        await migrate(db_url)
        device = await DeviceStore(create_session_factory(engine)).get("wl-1")
    finally:
        await engine.dispose()
    assert device is not None and device.attributes == {}


async def test_add_refuses_existing_ids_and_writes_nothing(store: DeviceStore) -> None:
    await store.add([_device(1)])
    with pytest.raises(RegistryError, match="aq-0001"):
        await store.add([_device(2), _device(1, district="other")])
    assert await store.get("aq-0002") is None
    assert (await store.get("aq-0001")) == _device(1)


async def test_upsert_counts_and_keeps_created(store: DeviceStore, clock: Clock) -> None:
    assert await store.upsert([_device(1), _device(2)]) == (2, 0)
    clock.now_ms += 5000
    assert await store.upsert([_device(2, grid="e-1-1"), _device(3)]) == (1, 1)
    assert (await store.get("aq-0002")).grid == "e-1-1"  # type: ignore[union-attr]
    assert await _timestamps(store, "aq-0002") == (1_700_000_000_000, 1_700_000_005_000)


async def _timestamps(store: DeviceStore, device_id: str) -> tuple[int, int]:
    async with store._sessions() as session:
        row = (
            await session.execute(
                text("SELECT created_ms, updated_ms FROM devices WHERE id = :id"), {"id": device_id}
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_list_filters_and_pages(store: DeviceStore) -> None:
    devices = [_device(i) for i in range(1, 11)]
    devices.append(_device(11, type="noise", status=DeviceStatus.RETIRED))
    await store.add(devices)
    items, total = await store.list()
    assert total == 11 and [d.id for d in items] == sorted(d.id for d in devices)
    items, total = await store.list(district="west", type="air_quality")
    assert total == 5 and all(d.district == "west" and d.type == "air_quality" for d in items)
    items, total = await store.list(status=DeviceStatus.RETIRED)
    assert (total, [d.id for d in items]) == (1, ["aq-0011"])
    items, total = await store.list(limit=3, offset=9)
    assert total == 11 and [d.id for d in items] == ["aq-0010", "aq-0011"]
    assert await store.list(district="nowhere") == ([], 0)


async def test_set_status(store: DeviceStore, clock: Clock) -> None:
    await store.add([_device(1)])
    clock.now_ms += 1
    updated = await store.set_status("aq-0001", DeviceStatus.MAINTENANCE)
    assert updated.status is DeviceStatus.MAINTENANCE
    assert (await store.get("aq-0001")).status is DeviceStatus.MAINTENANCE  # type: ignore[union-attr]
    assert (await _timestamps(store, "aq-0001"))[1] == clock.now_ms
    with pytest.raises(RegistryError, match="no device"):
        await store.set_status("nope", DeviceStatus.ACTIVE)


async def test_version_moves_with_every_write_and_only_then(
    store: DeviceStore, clock: Clock
) -> None:
    empty = await store.version()
    await store.add([_device(1), _device(2)])
    added = await store.version()
    assert added != empty and await store.version() == added  # reading moves nothing
    clock.now_ms += 1
    await store.set_status("aq-0002", DeviceStatus.MAINTENANCE)
    status = await store.version()
    clock.now_ms += 1
    await store.upsert([_device(1, lat=32.0)])
    assert len({empty, added, status, await store.version()}) == 4


async def test_map_rows_are_every_device_in_columns_with_its_version(store: DeviceStore) -> None:
    await store.add([_device(2, grid="c7", status=DeviceStatus.MAINTENANCE), _device(1)])
    version, rows = await store.map_rows()
    assert version == await store.version()
    assert rows == [("aq-0001", "air_quality", "west", "", 31.001, 121.001, "active"),
                    ("aq-0002", "air_quality", "east", "c7", 31.002, 121.002, "maintenance")]


async def test_many_devices_cross_chunks(store: DeviceStore) -> None:
    await store.add([_device(i) for i in range(1200)])
    assert await store.upsert([_device(i) for i in range(600, 1800)]) == (600, 600)
    assert (await store.list(limit=1))[1] == 1800


async def test_load_registry(store: DeviceStore) -> None:
    await store.add([_device(1), _device(2, type="water_level")])
    registry = await store.load_registry(load_catalogue())
    assert registry.get("aq-0002") == _device(2, type="water_level")
    assert registry.n_series == 6 + 1
    assert registry.slot("aq-0002", "level_m") is not None


async def test_areas_round_trip(store: DeviceStore, city_geojson: dict) -> None:
    assert await store.load_geography() is None
    geography = parse_geography(city_geojson)
    assert await store.put_areas(geography.areas()) == 10
    assert await store.put_areas(geography.areas()[:1]) == 1  # replacing is fine
    assert len(await store.list_areas("grid")) == 8
    loaded = await store.load_geography()
    assert loaded is not None
    assert set(loaded.areas()) == set(geography.areas())
    assert loaded.locate(1.5, 2.5) == ("east", "e-0-1")


async def test_sqlite_uses_wal(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'x.db'}"
    await migrate(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()


async def test_version_moves_with_writes_under_a_clock_standing_still(
    store: DeviceStore, clock: Clock
) -> None:
    """A clock following the readings of a quiet city stands still: a device put into
    maintenance and back within it must still move the version (pollers reload on it)."""
    await store.add([_device(1)])
    before = await store.version()
    await store.set_status("aq-0001", DeviceStatus.MAINTENANCE)
    away = await store.version()
    await store.set_status("aq-0001", DeviceStatus.ACTIVE)
    assert len({before, away, await store.version()}) == 3
