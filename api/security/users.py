"""People who log in: name, role, teams and an argon2 password hash, in SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.passwords import hash_password, needs_rehash, verify_password
from api.security.principal import Principal, Role, scoped_teams
from api.security.store import UserRow

MAX_NAME_LENGTH = 128


class UserError(ValueError):
    """A user that cannot be added or changed as asked."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    teams: frozenset[str]
    created_ms: int
    updated_ms: int
    disabled: bool = False

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.teams, kind="user")


def _user(row: UserRow) -> User:
    return User(
        name=row.name,
        role=Role(row.role),
        teams=frozenset(row.teams),
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        disabled=row.disabled,
    )


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME_LENGTH and name.isprintable()


class UserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(
        self, name: str, role: Role, teams: Iterable[str], password: str, now_ms: int
    ) -> User:
        if not _valid_name(name) or name != name.strip():
            raise UserError(f"invalid user name {name!r}: 1-{MAX_NAME_LENGTH} printable "
                            "characters, no surrounding spaces")
        scope = scoped_teams(role, teams)
        password_hash = await asyncio.to_thread(hash_password, password)
        row = UserRow(name=name, role=role.value, teams=sorted(scope),
                      password_hash=password_hash, created_ms=now_ms, updated_ms=now_ms,
                      disabled=False)
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise UserError(f"user {name!r} already exists") from None
        return _user(row)

    async def set_password(self, name: str, password: str, now_ms: int) -> None:
        password_hash = await asyncio.to_thread(hash_password, password)
        await self._update(name, password_hash=password_hash, updated_ms=now_ms)

    async def set_disabled(self, name: str, disabled: bool, now_ms: int) -> None:
        """A disabled user cannot log in or refresh, and their access tokens stop working at once
        (`api.deps` asks `is_disabled` on every request)."""
        await self._update(name, disabled=disabled, updated_ms=now_ms)

    async def _update(self, name: str, **values: Any) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(UserRow).where(UserRow.name == name).values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise UserError(f"no user {name!r}")

    async def is_disabled(self, name: str) -> bool:
        """True when `name` is a known user who is disabled (one primary-key lookup)."""
        async with self._sessions() as session:
            disabled = await session.scalar(select(UserRow.disabled).where(UserRow.name == name))
        return bool(disabled)

    async def get(self, name: str) -> User | None:
        async with self._sessions() as session:
            row = await session.get(UserRow, name)
            return None if row is None else _user(row)

    async def list(self) -> list[User]:
        async with self._sessions() as session:
            rows = await session.scalars(select(UserRow).order_by(UserRow.name))
            return [_user(r) for r in rows]

    async def authenticate(self, name: str, password: str, now_ms: int) -> User | None:
        """The user when `password` is theirs and they are not disabled; None otherwise
        (the same answer, after the same work, whether or not the user exists)."""
        row = None
        if _valid_name(name):  # else: no such user
            async with self._sessions() as session:
                row = await session.get(UserRow, name)
        stored = None if row is None else row.password_hash
        if not await asyncio.to_thread(verify_password, stored, password):
            return None
        assert row is not None
        if row.disabled:
            return None
        if needs_rehash(row.password_hash):  # parameters were raised since it was stored
            await self.set_password(name, password, now_ms)
        return _user(row)
