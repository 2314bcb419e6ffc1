"""Provisioning: devices and their MQTT credentials written in one transaction.

A device row without a credential (or the reverse) would be a device that can never
connect, or a login for nothing; so a crash or a failed credential write between the
two leaves neither. `DeviceStore` and `CredentialStore` keep their own tables; this
only puts their `*_in` writes into one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.credential_store import CredentialStore
from devices.geo import Area
from devices.registry import Device
from devices.store import DeviceStore

CHUNK = 1000  # devices per statement batch (keeps every IN list and insert a modest size)


class Provisioner:
    """Adds or imports devices together with their MQTT passwords (each call one transaction)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory
        self._devices = DeviceStore(session_factory)
        self._credentials = CredentialStore(session_factory)

    async def add(self, devices: Iterable[Device]) -> dict[str, str]:
        """Insert new devices with new passwords → {device_id: password}; all or nothing."""
        devices = list(devices)
        async with self._sessions.begin() as session:
            await self._devices.add_in(session, devices)
            return await self._credentials.issue_in(session, [d.id for d in devices])

    async def upsert(
        self, devices: Iterable[Device], on_progress: Callable[[int], None] | None = None,
        *, areas: Iterable[Area] = (),
    ) -> tuple[int, int, dict[str, str]]:
        """Insert or replace devices (and first `areas`); those without credentials get
        passwords.

        Returns (inserted, updated, {device_id: password}); all or nothing, however many
        devices (so a failed import never leaves logins whose passwords nobody saw).
        `on_progress(n)` is called as each `CHUNK` of devices is written.
        """
        devices = list(devices)
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
                    on_progress(len(chunk))
        return inserted, updated, passwords
