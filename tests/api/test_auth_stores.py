"""The users, refresh-token and API-key stores on both SQL backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.api_keys import ApiKeyStore
from api.security.principal import Principal, Role
from api.security.refresh import InvalidRefreshTokenError, RefreshTokens
from api.security.users import LoginRefusedError, UserError, UserStore


async def test_users(sessions: async_sessionmaker[AsyncSession]) -> None:
    users = UserStore(sessions)
    await users.add("rita", Role.responder, ["team-b", "team-a"], "password one", 1_000)
    with pytest.raises(UserError, match="already exists"):
        await users.add("rita", Role.viewer, [], "password two", 2_000)
    rita = await users.authenticate("rita", "password one", 3_000)
    assert rita.principal == Principal("rita", Role.responder, frozenset({"team-a", "team-b"}))
    assert await users.token_refusal(rita.principal) is None
    with pytest.raises(LoginRefusedError, match="wrong password"):
        await users.authenticate("rita", "password two", 3_000)
    with pytest.raises(LoginRefusedError, match="unknown user"):
        await users.authenticate("nobody", "password one", 3_000)
    await users.set_password("rita", "password three", 4_000)
    assert await users.token_refusal(rita.principal) is not None  # issued before the change
    assert (await users.authenticate("rita", "password three", 5_000)).name == "rita"
    assert [(u.name, u.updated_ms) for u in await users.list()] == [("rita", 4_000)]


async def test_refresh_tokens_are_single_use_even_when_raced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await UserStore(sessions).add("vic", Role.viewer, [], "password one", 0)
    tokens = RefreshTokens(sessions)
    token = await tokens.issue("vic", 1_000, ttl_s=60)
    results = await asyncio.gather(*(tokens.redeem(token, 2_000) for _ in range(4)),
                                   return_exceptions=True)
    assert results.count("vic") == 1
    assert all(isinstance(r, InvalidRefreshTokenError) for r in results if r != "vic")


async def test_api_keys(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = ApiKeyStore(sessions)
    record, key = await keys.create("gis", Role.viewer, [], "root", 1_000)
    assert await keys.authenticate(key) == record.principal
    assert (await keys.revoke(record.id, 2_000)).revoked_ms == 2_000  # type: ignore[union-attr]
    assert await keys.authenticate(key) is None
    assert await keys.revoke("nope", 2_000) is None
