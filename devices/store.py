"""The SQL home of devices and areas (SQLAlchemy 2 async; SQLite or PostgreSQL).

The tables are declared on the project's one base (`devices.sql`); the Alembic environment
in `urbanwatch/migrations` creates them (never `create_all` in production code).
Timestamps are integer epoch milliseconds: SQLite hands back timezone-aware
datetimes naive and second-rounded. `add` refuses ids that already exist
(`DuplicateDeviceError` naming them); `upsert` inserts or replaces, keeping `created_ms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import date
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Double,
    String,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from devices.catalogue import Catalogue
from devices.clock import now_ms
from devices.errors import DuplicateDeviceError, UnknownDeviceError
from devices.geo import Area, Geography, parse_area
from devices.registry import Device, DeviceStatus, Registry
from devices.sql import Base, TableVersion, table_version

_CHUNK = 500  # ids per IN (...) query, well under SQLite's and asyncpg's parameter limits


class DeviceRow(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    grid: Mapped[str] = mapped_column(String(64), default="")
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    department: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    installed: Mapped[date | None] = mapped_column(Date)
    gateway: Mapped[str | None] = mapped_column(String(64), index=True)
    attributes: Mapped[dict[str, float]] = mapped_column(JSON, default=dict, server_default="{}")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class AreaRow(Base):
    __tablename__ = "areas"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    district: Mapped[str] = mapped_column(String(64), index=True)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)


DeviceList = list[Device]
MAP_COLUMNS = ("id", "type", "district", "grid", "lat", "lon", "status")
MapRows = list[tuple[Any, ...]]  # each the values of MAP_COLUMNS
_DEVICE_FIELDS = tuple(f.name for f in fields(Device))


class DeviceStore:
    """Devices and areas in SQL; every method but the `*_in` ones is one transaction."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._sessions = session_factory
        self._clock_ms = clock_ms
        self._last_stamp = 0

    async def add(self, devices: Iterable[Device]) -> None:
        """Insert new devices; if any id exists already, nothing is written."""
        async with self._sessions.begin() as session:
            await self.add_in(session, devices)

    async def add_in(self, session: AsyncSession, devices: Iterable[Device]) -> None:
        """`add` as part of the caller's transaction (see `devices.provisioning`)."""
        devices = list(devices)
        existing = await _existing_ids(session, DeviceRow, [d.id for d in devices])
        if existing:
            raise DuplicateDeviceError(sorted(existing))
        try:
            now = self._stamp()
            await _insert(session, DeviceRow, [self._row(d, now, new=True) for d in devices])
        except IntegrityError as exc:  # a concurrent writer won the race
            raise DuplicateDeviceError([d.id for d in devices]) from exc

    async def upsert(self, devices: Iterable[Device]) -> tuple[int, int]:
        """Insert or replace devices; returns (inserted, updated)."""
        async with self._sessions.begin() as session:
            return await self.upsert_in(session, devices)

    async def upsert_in(self, session: AsyncSession, devices: Iterable[Device]) -> tuple[int, int]:
        """`upsert` as part of the caller's transaction (see `devices.provisioning`)."""
        devices = list(devices)
        existing = await _existing_ids(session, DeviceRow, [d.id for d in devices])
        now = self._stamp()
        new = [self._row(d, now, new=True) for d in devices if d.id not in existing]
        old = [self._row(d, now, new=False) for d in devices if d.id in existing]
        await _insert(session, DeviceRow, new)
        if old:
            await session.execute(update(DeviceRow), old)
        return len(new), len(old)

    async def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that are stored devices."""
        async with self._sessions() as session:
            return await _existing_ids(session, DeviceRow, list(ids))

    async def get(self, device_id: str) -> Device | None:
        async with self._sessions() as session:
            row = await session.get(DeviceRow, device_id)
            return _device(row) if row else None

    async def list(
        self,
        *,
        type: str | None = None,
        district: str | None = None,
        status: DeviceStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[DeviceList, int]:
        """Devices matching every given filter, ordered by id, and the total count."""
        conditions = [
            column == value
            for column, value in (
                (DeviceRow.type, type),
                (DeviceRow.district, district),
                (DeviceRow.status, status),
            )
            if value is not None
        ]
        query = select(DeviceRow).where(*conditions).order_by(DeviceRow.id).offset(offset)
        async with self._sessions() as session:
            count = select(func.count()).select_from(DeviceRow).where(*conditions)
            total = await session.scalar(count)
            rows = await session.scalars(query.limit(limit) if limit is not None else query)
            return [_device(r) for r in rows], int(total or 0)

    async def version(self) -> TableVersion:
        """What changes whenever a device is added or written (every write stamps updated_ms):
        one cheap query, to poll before reloading every device."""
        async with self._sessions() as session:
            return await table_version(session, DeviceRow, DeviceRow.updated_ms)

    async def map_rows(self) -> tuple[TableVersion, MapRows]:
        """Every device as a map draws it (`MAP_COLUMNS`, ordered by id), and its version, from
        one snapshot: without building 10,000 `Device`s."""
        columns = [getattr(DeviceRow, name) for name in MAP_COLUMNS]
        async with self._sessions() as session, session.begin():
            version = await table_version(session, DeviceRow, DeviceRow.updated_ms)
            rows = await session.execute(select(*columns).order_by(DeviceRow.id))
            return version, [tuple(row) for row in rows]

    async def set_status(self, device_id: str, status: DeviceStatus) -> Device:
        async with self._sessions.begin() as session:
            row = await session.get(DeviceRow, device_id)
            if row is None:
                raise UnknownDeviceError(device_id)
            row.status = DeviceStatus(status).value
            row.updated_ms = self._stamp()
            return _device(row)

    async def load_registry(self, catalogue: Catalogue) -> Registry:
        """A registry snapshot of every device, in id order (stable slots for a given set)."""
        devices, _ = await self.list()
        return Registry.build(catalogue, devices)

    async def put_areas(self, areas: Iterable[Area]) -> int:
        """Insert or replace areas by id; returns how many were written."""
        async with self._sessions.begin() as session:
            return await self.put_areas_in(session, areas)

    async def put_areas_in(self, session: AsyncSession, areas: Iterable[Area]) -> int:
        """`put_areas` as part of the caller's transaction (see `devices.provisioning`)."""
        rows: list[dict[str, Any]] = [
            {"id": a.id, "kind": a.kind, "name": a.name, "district": a.district}
            | {"geometry": a.geometry()}
            for a in areas
        ]
        existing = await _existing_ids(session, AreaRow, [r["id"] for r in rows])
        await _insert(session, AreaRow, [r for r in rows if r["id"] not in existing])
        old = [r for r in rows if r["id"] in existing]
        if old:
            await session.execute(update(AreaRow), old)
        return len(rows)

    async def list_areas(self, kind: str | None = None) -> Sequence[Area]:
        query = select(AreaRow).order_by(AreaRow.kind, AreaRow.id)
        if kind is not None:
            query = query.where(AreaRow.kind == kind)
        async with self._sessions() as session:
            rows = await session.scalars(query)
            return [_area(r) for r in rows]

    async def load_geography(self) -> Geography | None:
        """The stored districts and grid cells, or None when there are none."""
        areas = await self.list_areas()
        return Geography.build(areas) if areas else None

    def _stamp(self) -> int:
        """The time a write stamps: the clock, but always later than this store's previous
        stamp, so that writes under a clock standing still (one following the readings of a
        quiet city) still move `version`."""
        self._last_stamp = max(self._clock_ms(), self._last_stamp + 1)
        return self._last_stamp

    @staticmethod
    def _row(device: Device, now_ms: int, *, new: bool) -> dict[str, Any]:
        row = {field: getattr(device, field) for field in _DEVICE_FIELDS}
        row["status"] = DeviceStatus(device.status).value
        row["attributes"] = dict(device.attributes)
        row["updated_ms"] = now_ms
        if new:
            row["created_ms"] = now_ms
        return row


async def _existing_ids(session: AsyncSession, model: type[Base], ids: list[str]) -> set[str]:
    found: set[str] = set()
    id_column = model.__table__.c.id
    for lo in range(0, len(ids), _CHUNK):
        query = select(id_column).where(id_column.in_(ids[lo : lo + _CHUNK]))
        found.update(await session.scalars(query))
    return found


async def _insert(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]]) -> None:
    for lo in range(0, len(rows), _CHUNK):
        await session.execute(insert(model), rows[lo : lo + _CHUNK])


def _device(row: DeviceRow) -> Device:
    return Device(
        id=row.id,
        type=row.type,
        district=row.district,
        lat=row.lat,
        lon=row.lon,
        grid=row.grid,
        department=row.department,
        status=DeviceStatus(row.status),
        installed=row.installed,
        gateway=row.gateway,
        attributes=row.attributes or {},
    )


def _area(row: AreaRow) -> Area:
    props = {"id": row.id, "name": row.name, "kind": row.kind, "district": row.district}
    return parse_area({"properties": props}, row.geometry)
