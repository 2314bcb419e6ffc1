"""Refresh tokens: opaque, single use, stored as SHA-256 hashes with an expiry.

Redeeming one revokes it (the caller gets a new one: rotation). Presenting a token that was
already used revokes every refresh token of that user, since one of the two holders is not
the user.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.store import RefreshTokenRow


class InvalidRefreshTokenError(Exception):
    """Unknown, expired, already used or revoked."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def issue(self, user_name: str, now_ms: int, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            session.add(RefreshTokenRow(
                token_hash=_digest(token), user_name=user_name, created_ms=now_ms,
                expires_ms=now_ms + ttl_s * 1000, revoked_ms=None,
            ))
        return token

    async def redeem(self, token: str, now_ms: int) -> str:
        """Use up `token` and return whose it was."""
        digest = _digest(token)
        async with self._sessions.begin() as session:
            row = await session.get(RefreshTokenRow, digest)
            if row is None:
                problem = "unknown refresh token"
            elif row.revoked_ms is not None:  # committed before raising, on purpose
                await revoke_all_of(session, row.user_name, now_ms)
                problem = "refresh token already used or revoked"
            elif row.expires_ms <= now_ms:
                problem = "refresh token expired"
            else:
                used = await session.execute(  # single use even when two requests race
                    update(RefreshTokenRow)
                    .where(RefreshTokenRow.token_hash == digest,
                           RefreshTokenRow.revoked_ms.is_(None))
                    .values(revoked_ms=now_ms)
                )
                ok = used.rowcount == 1  # type: ignore[attr-defined]
                problem = "" if ok else "refresh token already used or revoked"
        if problem:
            raise InvalidRefreshTokenError(problem)
        assert row is not None
        return row.user_name


async def revoke_all_of(session: AsyncSession, user_name: str, now_ms: int) -> None:
    """Revoke every live refresh token of `user_name`, in the caller's transaction."""
    await session.execute(
        update(RefreshTokenRow)
        .where(RefreshTokenRow.user_name == user_name, RefreshTokenRow.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )
