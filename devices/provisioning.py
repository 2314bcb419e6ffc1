"""Provisioning: the one service that creates, imports, updates and retires devices and
issues or revokes their MQTT logins. The API and the CLI both call it, so both refuse the
same things for the same reasons.

Everything given is validated before anything is written (`devices.validation`: the
fields, a type of the catalogue, a district and grid cell of the stored areas, a gateway
that exists, an id the broker can take as a username). A device row and its credential are
written in one transaction: a device without a login could never connect, a login without
a device is a login for nothing. An import of any size is all or nothing, so a failed
import never leaves logins whose passwords nobody saw. After every write that may change
who may connect, `on_changed` runs (the platform reloads the broker's users and ACLs and
the ingest registry; the CLI syncs the managed broker).

Refusals: InvalidDeviceError, UnknownDeviceError, DuplicateDeviceError, RetiredDeviceError
and, for an import, DeviceFileError listing every bad row (see `devices.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.catalogue import Catalogue
from devices.credential_store import CredentialStore
from devices.credentials import Credential
from devices.errors import (
    DeviceFileError,
    InvalidDeviceError,
    RetiredDeviceError,
    UnknownDeviceError,
)
from devices.files import device_record, parse_devices
from devices.geo import Area, Geography
from devices.placement import place
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from devices.validation import device_problem, parse

CHUNK = 1000  # devices per statement batch (keeps every IN list and insert a modest size)
FIXED_FIELDS = ("id", "type")  # an update never changes these; an import may re-type a device
Changed = Callable[[], Awaitable[None]]
Progress = Callable[[int, int], None]  # (devices just written, devices in all)


@dataclass(frozen=True)
class Imported:
    new: int
    updated: int
    passwords: dict[str, str]  # {device_id: password} for the devices that had no login
    areas: int  # areas stored along with the devices


class Provisioning:
    """Every change to devices and their logins; each method is one transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], catalogue: Catalogue,
        on_changed: Changed | None = None,
    ) -> None:
        self._sessions = sessions
        self._catalogue = catalogue
        self._on_changed = on_changed
        self._devices = DeviceStore(sessions)
        self._credentials = CredentialStore(sessions)

    async def create(self, fields: Mapping[str, object]) -> tuple[Device, str]:
        """A new device from field values, with a new MQTT password → (device, password)."""
        device = parse(fields, self._catalogue)
        device = await self._checked(device, await self._devices.load_geography())
        async with self._sessions.begin() as session:
            await self._devices.add_in(session, [device])
            passwords = await self._credentials.issue_in(session, [device.id])
        await self._changed()
        return device, passwords[device.id]

    async def import_many(
        self, data: bytes, suffix: str, *, source: str, areas: Geography | None = None,
        on_progress: Progress | None = None,
    ) -> Imported:
        """Insert or replace the devices of a device file (`suffix` .csv or .geojson), and
        first `areas`; devices without a login get one.

        The file's devices are located and checked in the stored areas together with
        `areas`; `on_progress(n, total)` is called as each `CHUNK` of `n` devices is written.
        """
        geography = await self._geography_with(areas)
        devices = parse_devices(data, suffix, self._catalogue, geography, source=source)
        known = await self._known_gateways(devices)
        problems = [
            f"device {d.id}: {problem}" for d in devices
            if (problem := device_problem(d, geography, known)) is not None
        ]
        if problems:
            raise DeviceFileError(source, problems)
        new_areas = areas.areas() if areas is not None else ()
        devices = [place(d, geography) for d in devices]
        new, updated, passwords = await self._upsert(devices, new_areas, on_progress)
        await self._changed()
        return Imported(new, updated, passwords, len(new_areas))

    async def update(self, device_id: str, changes: Mapping[str, object]) -> Device:
        """The device with `changes` applied; fields left out keep their values, and a new
        district without a grid cell has its cell located again."""
        fixed = sorted(changes.keys() & set(FIXED_FIELDS))
        if fixed:
            raise InvalidDeviceError(f"device {device_id!r}: {', '.join(fixed)} cannot be changed")
        changes = dict(changes)
        if "district" in changes and "grid" not in changes:
            changes["grid"] = ""  # the old cell belongs to the old district
        current = await self._current(device_id)
        device = parse(device_record(current) | changes, self._catalogue)
        device = await self._checked(device, await self._devices.load_geography())
        await self._devices.upsert([device])
        await self._changed()
        return device

    async def set_status(self, device_id: str, status: DeviceStatus) -> Device:
        device = await self._devices.set_status(device_id, status)
        await self._changed()
        return device

    async def retire(self, device_id: str) -> Device:
        """Retire a device: the broker cuts it off and it gets no new login."""
        return await self.set_status(device_id, DeviceStatus.RETIRED)

    async def rotate_credentials(self, device_id: str) -> str:
        """A new MQTT password for the device (the old one stops working)."""
        device = await self._current(device_id)
        if device.status == DeviceStatus.RETIRED:
            raise RetiredDeviceError(device_id)
        password = (await self._credentials.issue([device_id]))[device_id]
        await self._changed()
        return password

    async def revoke_credentials(self, device_id: str) -> Credential:
        """Revoke the device's MQTT login; it stays cut off until it gets a new one."""
        credential = await self._credentials.revoke(device_id)
        await self._changed()
        return credential

    async def _changed(self) -> None:
        if self._on_changed is not None:
            await self._on_changed()

    async def _current(self, device_id: str) -> Device:
        device = await self._devices.get(device_id)
        if device is None:
            raise UnknownDeviceError(device_id)
        return device

    async def _checked(self, device: Device, geography: Geography | None) -> Device:
        """The device placed in the stored areas, or InvalidDeviceError saying why not."""
        known = await self._devices.existing_ids([device.gateway] if device.gateway else [])
        problem = device_problem(device, geography, known)
        if problem is not None:
            raise InvalidDeviceError(f"device {device.id!r}: {problem}")
        return place(device, geography)

    async def _geography_with(self, areas: Geography | None) -> Geography | None:
        """The stored areas, with `areas` replacing those of the same id: what is stored
        once an import with `areas` is written."""
        stored = await self._devices.list_areas()
        if areas is None:
            return Geography.build(stored) if stored else None
        return Geography.build({a.id: a for a in (*stored, *areas.areas())}.values())

    async def _known_gateways(self, devices: list[Device]) -> set[str]:
        """Ids a gateway of `devices` may name: theirs, and the stored ones they name."""
        ids = {d.id for d in devices}
        named = {d.gateway for d in devices if d.gateway is not None} - ids
        return ids | await self._devices.existing_ids(named)

    async def _upsert(
        self, devices: list[Device], areas: Iterable[Area], on_progress: Progress | None
    ) -> tuple[int, int, dict[str, str]]:
        inserted = updated = 0
        passwords: dict[str, str] = {}
        async with self._sessions.begin() as session:
            await self._devices.put_areas_in(session, areas)
            for lo in range(0, len(devices), CHUNK):
                chunk = devices[lo : lo + CHUNK]
                new, old = await self._devices.upsert_in(session, chunk)
                ids = [d.id for d in chunk]
                passwords |= await self._credentials.issue_in(session, ids, only_missing=True)
                inserted, updated = inserted + new, updated + old
                if on_progress is not None:
                    on_progress(len(chunk), len(devices))
        return inserted, updated, passwords
