"""People who log in: name, role, teams and an argon2 password hash, in SQL.

Each user has a token generation, a random number written into the access tokens issued to
them. Changing the password or disabling the user draws a new one and revokes their refresh
tokens in the same transaction, so every token they held stops working at once
(`token_refusal` is asked on every request and by live streams), and enabling them again
brings none of it back. Being random, a generation is not repeated by a user deleted and
added again under the same name.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.passwords import PasswordPool, needs_rehash
from api.security.principal import Principal, Role, scoped_teams
from api.security.refresh import revoke_all_of
from api.security.store import UserRow

MAX_NAME_LENGTH = 128


class UserError(ValueError):
    """A user that cannot be added or changed as asked."""


class UnknownUserError(UserError):
    """No user by that name."""


class DuplicateUserError(UserError):
    """A user by that name exists already."""


class LastAdminError(UserError):
    """The change would leave no enabled admin, and so nobody to manage the users."""


class LoginRefusedError(Exception):
    """Not let in; the reason is for the audit log, never for the caller."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    teams: frozenset[str]
    created_ms: int
    updated_ms: int
    disabled: bool = False
    token_generation: int = 0

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.teams, kind="user",
                         generation=self.token_generation)


def _user(row: UserRow) -> User:
    return User(
        name=row.name,
        role=Role(row.role),
        teams=frozenset(row.teams),
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        disabled=row.disabled,
        token_generation=row.token_generation,
    )


def _new_generation() -> int:
    return secrets.randbits(62)


async def _keep_an_admin(session: AsyncSession, leaving: str) -> None:
    """Refuse to let `leaving` stop being an enabled admin when no other enabled admin would
    be left (the rows are locked where the database can, so two such changes cannot pass
    each other)."""
    admins = (await session.scalars(
        select(UserRow.name)
        .where(UserRow.role == Role.admin.value, UserRow.disabled.is_(False))
        .with_for_update()
    )).all()
    if admins == [leaving]:
        raise LastAdminError(f"{leaving!r} is the last enabled admin; add another admin first")


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME_LENGTH and name.isprintable()


class UserStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], passwords: PasswordPool | None = None
    ) -> None:
        self._sessions = sessions
        self._passwords = passwords or PasswordPool()

    async def add(
        self, name: str, role: Role, teams: Iterable[str], password: str, now_ms: int
    ) -> User:
        if not _valid_name(name) or name != name.strip():
            raise UserError(f"invalid user name {name!r}: 1-{MAX_NAME_LENGTH} printable "
                            "characters, no surrounding spaces")
        scope = scoped_teams(role, teams)
        password_hash = await self._passwords.hash(password)
        row = UserRow(name=name, role=role.value, teams=sorted(scope),
                      password_hash=password_hash, created_ms=now_ms, updated_ms=now_ms,
                      disabled=False, token_generation=_new_generation())
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise DuplicateUserError(f"user {name!r} already exists") from None
        return _user(row)

    async def set_password(self, name: str, password: str, now_ms: int) -> None:
        """The new password; every token the user holds stops working."""
        password_hash = await self._passwords.hash(password)
        await self._update(name, now_ms, retire_tokens=True, password_hash=password_hash)

    async def set_disabled(self, name: str, disabled: bool, now_ms: int) -> None:
        """A disabled user cannot log in or refresh, and the tokens they held stop working at
        once; enabling them again does not bring those tokens back."""
        await self._update(name, now_ms, retire_tokens=disabled, disabled=disabled)

    async def set_role(self, name: str, role: Role, teams: Iterable[str], now_ms: int) -> None:
        """A new role and teams; the tokens the user holds name the old ones, so they stop
        working."""
        scope = scoped_teams(role, teams)
        await self._update(name, now_ms, retire_tokens=True, role=role.value, teams=sorted(scope))

    async def delete(self, name: str) -> None:
        """Remove the user; their refresh tokens go with the row, their access tokens are
        refused since no user answers to them."""
        async with self._sessions.begin() as session:
            await _keep_an_admin(session, name)
            result = await session.execute(delete(UserRow).where(UserRow.name == name))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise UnknownUserError(f"no user {name!r}")

    async def _update(self, name: str, now_ms: int, *, retire_tokens: bool, **values: Any) -> None:
        if retire_tokens:
            values["token_generation"] = _new_generation()
        async with self._sessions.begin() as session:
            if values.get("disabled") or values.get("role", Role.admin.value) != Role.admin.value:
                await _keep_an_admin(session, name)
            result = await session.execute(
                update(UserRow).where(UserRow.name == name).values(updated_ms=now_ms, **values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise UnknownUserError(f"no user {name!r}")
            if retire_tokens:
                await revoke_all_of(session, name, now_ms)

    async def token_refusal(self, principal: Principal) -> str | None:
        """Why an access token of user `principal` is no longer accepted; None while it is
        (one primary-key lookup).

        Every token a login issues carries its user's generation. One without (issued before
        migration 0008, or minted with the secret key by a tool) is refused only while its
        user is disabled: whoever holds the secret key can mint any token anyway.
        """
        async with self._sessions() as session:
            found = (await session.execute(
                select(UserRow.disabled, UserRow.token_generation)
                .where(UserRow.name == principal.subject)
            )).one_or_none()
        if principal.generation is None:
            return "the user is disabled" if found is not None and found.disabled else None
        if found is None:
            return "the user no longer exists"
        if found.disabled:
            return "the user is disabled"
        if found.token_generation != principal.generation:
            return "it was issued before the password changed or the user was disabled"
        return None

    async def get(self, name: str) -> User | None:
        async with self._sessions() as session:
            row = await session.get(UserRow, name)
            return None if row is None else _user(row)

    async def list(self) -> list[User]:
        async with self._sessions() as session:
            rows = await session.scalars(select(UserRow).order_by(UserRow.name))
            return [_user(r) for r in rows]

    async def authenticate(self, name: str, password: str, now_ms: int) -> User:
        """The user when `password` is theirs and they are not disabled; LoginRefusedError
        otherwise (after the same work whether or not the user exists).
        PasswordPoolBusyError when the password could not be checked now."""
        row = None
        if _valid_name(name):  # else: no such user
            async with self._sessions() as session:
                row = await session.get(UserRow, name)
        stored = None if row is None else row.password_hash
        matched = await self._passwords.verify(stored, password)
        if row is None:
            raise LoginRefusedError("unknown user")
        if not matched:
            raise LoginRefusedError("wrong password")
        if row.disabled:
            raise LoginRefusedError("user disabled")
        if needs_rehash(row.password_hash):  # parameters were raised since it was stored
            await self._rehash(name, password, now_ms)
        return _user(row)

    async def _rehash(self, name: str, password: str, now_ms: int) -> None:
        """Store the same password under today's parameters (its tokens stay valid)."""
        password_hash = await self._passwords.hash(password)
        await self._update(name, now_ms, retire_tokens=False, password_hash=password_hash)
