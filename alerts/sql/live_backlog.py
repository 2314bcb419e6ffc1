"""The live stream's bounded backlog: every live event is a row, so a client can resume.

`append` runs inside the transaction of the change that caused the events, so an event is
never published that was not stored; it returns the events with their ids (the row ids), which
the caller publishes to the `LiveHub` after the commit. Ids grow in commit order: SQLite allows
one writer at a time, and on PostgreSQL `append` locks the table until the commit (a sequence
alone hands out ids in insert order, so a reader could see 11 committed before 10 and skip 10).

`prune` keeps the newest `Retention.max_events` events no older than `Retention.max_age_ms`,
but never the newest one, so the oldest retained id always tells a resuming client whether
what it missed is still there (`span`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.decisions.live_events import LiveEvent
from alerts.sql.repository import is_postgresql
from alerts.sql.tables import LiveEventRow

PAGE = 500  # events read per query while replaying


@dataclass(frozen=True)
class Retention:
    max_events: int = 10_000
    max_age_ms: int = 24 * 3600_000


@dataclass(frozen=True)
class Span:
    """The ids the backlog holds; both None when no event was ever stored."""

    oldest: int | None
    newest: int | None


async def append(
    session: AsyncSession, events: Iterable[LiveEvent], now_ms: int
) -> tuple[LiveEvent, ...]:
    """Store `events` in `session`'s transaction; the same events, each with its ``id``."""
    events = tuple(events)
    if not events:
        return ()
    if is_postgresql(session):
        await session.execute(text("LOCK TABLE live_events IN EXCLUSIVE MODE"))
    stmt = insert(LiveEventRow).returning(LiveEventRow.id, sort_by_parameter_order=True)
    rows = [{"stored_ms": now_ms, "event": event} for event in events]
    ids = (await session.execute(stmt, rows)).scalars().all()
    return tuple(_with_id(i, event) for i, event in zip(ids, events, strict=True))


async def prune(
    sessions: async_sessionmaker[AsyncSession], retention: Retention, now_ms: int
) -> int:
    """Delete what `retention` no longer keeps (never the newest event); how many went."""
    async with sessions.begin() as session:
        newest = await session.scalar(select(func.max(LiveEventRow.id)))
        if newest is None:
            return 0
        keep_from = await session.scalar(
            select(LiveEventRow.id).order_by(LiveEventRow.id.desc())
            .offset(retention.max_events - 1).limit(1)
        )  # fmt: skip
        old = LiveEventRow.stored_ms < now_ms - retention.max_age_ms
        if keep_from is not None:
            old = old | (LiveEventRow.id < keep_from)
        result = await session.execute(
            delete(LiveEventRow).where(old, LiveEventRow.id < newest)
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def span(sessions: async_sessionmaker[AsyncSession]) -> Span:
    async with sessions() as session:
        oldest, newest = (
            await session.execute(select(func.min(LiveEventRow.id), func.max(LiveEventRow.id)))
        ).one()
    return Span(oldest, newest)


async def after(
    sessions: async_sessionmaker[AsyncSession], since: int
) -> AsyncIterator[LiveEvent]:
    """The stored events with an id above `since`, in id order, read a page at a time."""
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(LiveEventRow.id, LiveEventRow.event)
                    .where(LiveEventRow.id > since).order_by(LiveEventRow.id).limit(PAGE)
                )
            ).all()  # fmt: skip
        for row_id, event in rows:
            yield _with_id(row_id, event)
        if len(rows) < PAGE:
            return
        since = rows[-1][0]


def _with_id(event_id: int, event: LiveEvent) -> LiveEvent:
    return {"id": event_id, **event}
