"""Silences, the handlers snapshot and the audit log in SQL, inside a caller's transaction."""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.decisions.silences import Field, Matcher, Op, Silence, Weekly
from alerts.routing import RoutingConfig
from alerts.sql.repository import upsert
from alerts.sql.tables import AuditRow, HandlerRow, SilenceRow


def silence_row(silence: Silence, created_ms: int) -> dict[str, Any]:
    weekly = silence.weekly
    return {
        "id": silence.id,
        "starts_ms": silence.starts_ms,
        "ends_ms": silence.ends_ms,
        "author": silence.author,
        "reason": silence.reason,
        "created_ms": created_ms,
        "matchers": [
            {"field": m.field.value, "value": m.value, "op": m.op.value} for m in silence.matchers
        ],
        "weekly": None
        if weekly is None
        else {
            "weekdays": sorted(weekly.weekdays),
            "start": weekly.start.isoformat(),
            "end": weekly.end.isoformat(),
            "tz": weekly.tz,
        },
        "expired_ms": None,
    }


def silence_of(row: SilenceRow) -> Silence:
    weekly = None
    if row.weekly is not None:
        w = row.weekly
        weekly = Weekly(
            frozenset(w["weekdays"]),
            time.fromisoformat(w["start"]),
            time.fromisoformat(w["end"]),
            w["tz"],
        )
    # silences stored before matchers had an operator are equality matchers
    matchers = tuple(
        Matcher(Field(m["field"]), m["value"], Op(m.get("op", Op.EQUAL))) for m in row.matchers
    )
    return Silence(row.id, matchers, row.starts_ms, row.ends_ms, row.author, row.reason, weekly)


async def load_silences(session: AsyncSession, *, include_expired: bool) -> list[SilenceRow]:
    query = select(SilenceRow).order_by(SilenceRow.starts_ms, SilenceRow.id)
    if not include_expired:
        query = query.where(SilenceRow.expired_ms.is_(None))
    return list((await session.scalars(query)).all())


async def expire_silence(session: AsyncSession, silence_id: str, now_ms: int) -> bool:
    """Mark a silence expired now; returns False if there is no unexpired silence by that id."""
    row = await session.get(SilenceRow, silence_id)
    if row is None or row.expired_ms is not None:
        return False
    values: dict[str, Any] = {"expired_ms": now_ms}
    if now_ms > row.starts_ms and (row.ends_ms is None or now_ms < row.ends_ms):
        values["ends_ms"] = now_ms  # the record shows when it really ended
    await session.execute(update(SilenceRow).where(SilenceRow.id == silence_id).values(values))
    return True


async def save_handlers(session: AsyncSession, routing: RoutingConfig, now_ms: int) -> None:
    rows = [
        {
            "id": h.id,
            "name": h.name,
            "districts": list(h.districts),
            "categories": list(h.categories),
            "updated_ms": now_ms,
            "teams": [t.model_dump(mode="json") for t in h.teams],
        }
        for h in routing.handlers
    ]
    await upsert(session, HandlerRow, rows)


async def audit(
    session: AsyncSession,
    ts_ms: int,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    detail: str = "",
) -> None:
    await session.execute(
        insert(AuditRow).values(
            ts_ms=ts_ms,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=detail,
        )
    )
