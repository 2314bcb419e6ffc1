"""Writing HTTP requests and failed logins to the audit log, and reading it back (newest
first)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.store import audit_log

HTTP_ENTITY = "http"  # `entity` of rows written for requests (domain rows name what changed)
LOGIN_ENTITY = "login"  # `entity` of failed logins; `entity_id` is the name tried
LOGIN_FAILED = "login_failed"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts_ms: int
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: str
    address: str | None
    route: str | None
    status: int | None


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    action: str | None = None
    route: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def where(self) -> list[ColumnElement[bool]]:
        c = audit_log.c
        equal: dict[str, Any] = {
            "actor": self.actor, "entity": self.entity, "entity_id": self.entity_id,
            "action": self.action, "route": self.route,
        }
        clauses = [c[name] == value for name, value in equal.items() if value is not None]
        if self.since_ms is not None:
            clauses.append(c.ts_ms >= self.since_ms)
        if self.until_ms is not None:
            clauses.append(c.ts_ms < self.until_ms)
        return clauses


async def record_request(
    sessions: async_sessionmaker[AsyncSession], *, ts_ms: int, actor: str, method: str,
    path: str, route: str, status: int, address: str | None,
) -> None:
    async with sessions.begin() as session:
        await session.execute(insert(audit_log).values(
            ts_ms=ts_ms, actor=actor[:128], action=method, entity=HTTP_ENTITY,
            entity_id=path[:64], detail=path if len(path) > 64 else "", address=address,
            route=route[:300], status=status,
        ))


async def record_failed_login(
    sessions: async_sessionmaker[AsyncSession], *, ts_ms: int, name: str, reason: str,
    address: str | None, route: str, status: int,
) -> None:
    """A login that did not let anyone in: the name tried, why, and from where (never the
    password). The actor is the name tried, since nobody was authenticated.

    A flood of failed logins is a flood of writes: when the database stays locked past its
    wait (SQLite under a burst), the entry goes to the server log instead, so the caller
    still gets its refusal (never a 500) and the attempt is still on record.
    """
    try:
        async with sessions.begin() as session:
            await session.execute(insert(audit_log).values(
                ts_ms=ts_ms, actor=name[:128], action=LOGIN_FAILED, entity=LOGIN_ENTITY,
                entity_id=name[:64], detail=reason, address=address, route=route[:300],
                status=status,
            ))
    except OperationalError:
        log.warning("failed login (database busy, not in the audit log): name %r, reason %r, "
                    "address %r, status %d at %d ms", name[:128], reason, address, status, ts_ms)


async def read(
    sessions: async_sessionmaker[AsyncSession], where: AuditFilter, limit: int, offset: int,
    before_id: int | None = None,
) -> tuple[list[AuditEntry], int]:
    """One page of entries matching `where`, newest (highest id) first, and how many match in
    all; with `before_id`, a keyset position, only the entries older than that one."""
    clauses = where.where()
    page = clauses if before_id is None else [*clauses, audit_log.c.id < before_id]
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(audit_log).where(*clauses))
        rows = await session.execute(
            select(audit_log).where(*page).order_by(audit_log.c.id.desc())
            .limit(limit).offset(offset)
        )
        return [AuditEntry(**row._mapping) for row in rows], int(total or 0)
