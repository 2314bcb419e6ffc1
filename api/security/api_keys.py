"""API keys for integrations: random secrets shown once, stored as SHA-256 hashes.

A key reads ``uw_<prefix>_<secret>``; the prefix finds the row, the hash of the whole key
is compared in constant time. The keys are 190+ bits of randomness, so a fast hash is as
safe as a slow one here and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.principal import Principal, Role, scoped_teams
from api.security.store import ApiKeyRow

KEY_PREFIX = "uw_"
SUBJECT_PREFIX = "api-key:"  # a key's principal is named after its id


@dataclass(frozen=True)
class ApiKey:
    id: str
    prefix: str
    name: str
    role: Role
    teams: frozenset[str]
    created_by: str
    created_ms: int
    revoked_ms: int | None = None

    @property
    def principal(self) -> Principal:
        return Principal(f"{SUBJECT_PREFIX}{self.id}", self.role, self.teams, kind="api_key")


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id, prefix=row.prefix, name=row.name, role=Role(row.role),
        teams=frozenset(row.teams), created_by=row.created_by, created_ms=row.created_ms,
        revoked_ms=row.revoked_ms,
    )


def key_id_of(principal: Principal) -> str:
    """The id of the API key `principal` authenticated with."""
    return principal.subject.removeprefix(SUBJECT_PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX):].partition("_")
    return prefix if sep and prefix and secret else None


class ApiKeyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self, name: str, role: Role, teams: Iterable[str], created_by: str, now_ms: int
    ) -> tuple[ApiKey, str]:
        """The new key's record and the key itself (the only time it is available)."""
        scope = scoped_teams(role, teams)
        prefix = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
        row = ApiKeyRow(
            id=secrets.token_hex(8), prefix=prefix, key_hash=_digest(key), role=role.value,
            teams=sorted(scope), name=name, created_by=created_by, created_ms=now_ms,
            revoked_ms=None,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return _key(row), key

    async def list(self) -> list[ApiKey]:
        async with self._sessions() as session:
            rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_ms))
            return [_key(r) for r in rows]

    async def revoke(self, key_id: str, now_ms: int) -> ApiKey | None:
        """Revoke the key (a revoked key stays revoked at its first time); None if unknown."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            row = await session.get(ApiKeyRow, key_id)
            return None if row is None else _key(row)

    async def is_active(self, key_id: str) -> bool:
        """True while the key `key_id` exists and is not revoked (one primary-key lookup)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(ApiKeyRow.id).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_ms.is_(None))
            )
        return found is not None

    async def authenticate(self, key: str) -> Principal | None:
        prefix = _prefix_of(key)
        if prefix is None:
            return None
        async with self._sessions() as session:
            row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))
        if row is None or row.revoked_ms is not None:
            return None
        if not hmac.compare_digest(row.key_hash, _digest(key)):
            return None
        return _key(row).principal
