"""The audit log: who changed what, when and from where (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import SessionsDep, require
from api.query import Offset, PageSize, epoch_ms_bound
from api.schemas.audit import AuditPage, AuditRecord
from api.security.audit_log import AuditFilter, read
from api.security.principal import Principal, Role

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", summary="Read the audit log, newest first, with filters and paging")
async def read_audit(
    _caller: Annotated[Principal, Depends(require(Role.admin))],
    sessions: SessionsDep,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    route: Annotated[str | None, Query(max_length=300)] = None,
    since_ms: Annotated[int | None, epoch_ms_bound("at or after")] = None,
    until_ms: Annotated[int | None, epoch_ms_bound("before")] = None,
    limit: PageSize = 100,
    offset: Offset = 0,
) -> AuditPage:
    where = AuditFilter(actor=actor, entity=entity, entity_id=entity_id, action=action,
                        route=route, since_ms=since_ms, until_ms=until_ms)
    entries, total = await read(sessions, where, limit, offset)
    return AuditPage(items=[AuditRecord.of(e) for e in entries], total=total, limit=limit,
                     offset=offset)
