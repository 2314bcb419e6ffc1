"""Device MQTT credentials in SQL: one row per device, only the Mosquitto hash is kept.

`issue` creates or replaces credentials and returns the passwords (the only time
they exist in clear); `revoke` keeps the row with its revocation time, so a revoked
device stays cut off until it is issued new credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import BigInteger, ForeignKey, String, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from devices.clock import now_ms
from devices.credentials import Credential, check_username, generate_password, hash_password
from devices.errors import RegistryError
from devices.sql import Base, TableVersion, table_version

_CHUNK = 500


class CredentialRow(Base):
    __tablename__ = "device_credentials"
    device_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)


class CredentialStore:
    """Issue, revoke and list device credentials; every method but `issue_in` is one transaction."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession],
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._sessions = session_factory
        self._clock_ms = clock_ms

    async def issue(self, device_ids: Iterable[str], *, only_missing: bool = False
                    ) -> dict[str, str]:
        """New passwords for `device_ids` (replacing any old ones) → {device_id: password}.

        With `only_missing`, devices that already have a credential row are left alone.
        """
        async with self._sessions.begin() as session:
            return await self.issue_in(session, device_ids, only_missing=only_missing)

    async def issue_in(self, session: AsyncSession, device_ids: Iterable[str], *,
                       only_missing: bool = False) -> dict[str, str]:
        """`issue` as part of the caller's transaction (see `devices.provisioning`)."""
        ids = [check_username(i) for i in dict.fromkeys(device_ids)]
        now_ms = self._clock_ms()
        existing = await _existing(session, ids)
        if only_missing:
            ids = [i for i in ids if i not in existing]
        passwords = {i: generate_password() for i in ids}
        rows = [
            {"device_id": i, "password_hash": hash_password(p), "created_ms": now_ms,
             "revoked_ms": None}
            for i, p in passwords.items()
        ]
        replaced = [i for i in ids if i in existing]
        for lo in range(0, len(replaced), _CHUNK):
            chunk = replaced[lo : lo + _CHUNK]
            await session.execute(delete(CredentialRow).where(CredentialRow.device_id.in_(chunk)))
        for lo in range(0, len(rows), _CHUNK):
            await session.execute(insert(CredentialRow), rows[lo : lo + _CHUNK])
        return passwords

    async def revoke(self, device_id: str) -> Credential:
        async with self._sessions.begin() as session:
            row = await session.get(CredentialRow, device_id)
            if row is None:
                raise RegistryError(f"device {device_id!r} has no MQTT credentials")
            if row.revoked_ms is None:
                row.revoked_ms = self._clock_ms()
            return _credential(row)

    async def get(self, device_id: str) -> Credential | None:
        async with self._sessions() as session:
            row = await session.get(CredentialRow, device_id)
            return _credential(row) if row else None

    async def version(self) -> TableVersion:
        """What changes whenever a credential is issued or revoked (see `table_version`)."""
        async with self._sessions() as session:
            return await table_version(session, CredentialRow, CredentialRow.created_ms,
                                       CredentialRow.revoked_ms)

    async def all(self) -> dict[str, Credential]:
        async with self._sessions() as session:
            rows = await session.scalars(select(CredentialRow))
            return {r.device_id: _credential(r) for r in rows}


async def _existing(session: AsyncSession, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for lo in range(0, len(ids), _CHUNK):
        query = select(CredentialRow.device_id).where(
            CredentialRow.device_id.in_(ids[lo : lo + _CHUNK])
        )
        found.update(await session.scalars(query))
    return found


def _credential(row: CredentialRow) -> Credential:
    return Credential(row.device_id, row.password_hash, row.created_ms, row.revoked_ms)
