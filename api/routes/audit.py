"""The audit log: who changed what, when and from where (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.clock import Instant
from api.cursor import Cursor, page_of, start_of
from api.deps import SessionsDep, require
from api.query import Offset, PageSize, Since, Until, alias_of, time_range
from api.schemas.audit import AuditPage, AuditRecord
from api.schemas.problems import Invalid
from api.security.audit_log import AuditFilter, read
from api.security.principal import Principal, Role

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "", summary="Read the audit log, newest first, with filters and paging",
    responses={422: {"model": Invalid, "description": "bad filter, time range or cursor"}},
)
async def read_audit(
    _caller: Annotated[Principal, Depends(require(Role.admin))],
    sessions: SessionsDep,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    route: Annotated[str | None, Query(max_length=300)] = None,
    since: Since = None,
    until: Until = None,
    since_ms: Annotated[Instant | None, alias_of("since")] = None,
    until_ms: Annotated[Instant | None, alias_of("until")] = None,
    limit: PageSize = 100,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> AuditPage:
    after = start_of("audit", cursor, offset, (int,))
    since_ms, until_ms = time_range(("since", since, "since_ms", since_ms),
                                    ("until", until, "until_ms", until_ms))
    where = AuditFilter(actor=actor, entity=entity, entity_id=entity_id, action=action,
                        route=route, since_ms=since_ms, until_ms=until_ms)
    found, total = await read(sessions, where, limit + 1, offset,
                              before_id=None if after is None else after[0])
    entries, next_cursor = page_of("audit", found, limit, lambda e: (e.id,))
    return AuditPage(items=[AuditRecord.of(e) for e in entries], total=total, limit=limit,
                     offset=offset, next_cursor=next_cursor)
