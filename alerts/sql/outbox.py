"""The persisted outbox: every notification is a row before anyone is told anything.

The service enqueues rows in the same transaction as the state change that caused them, so a
crash loses neither. A row is unique by (idempotency key, channel): enqueuing the same
notification twice is a no-op. The dispatcher claims due rows under a lease (a dispatcher that
dies mid-send leaves the row to be claimed again when the lease runs out), sends, and marks the
outcome; a resent row carries the same key, so a receiver that dedups by key sees it once.

Row states: ``pending`` → ``delivered`` (the receiver confirmed it, e.g. a webhook's 2xx) |
``published`` (a broker accepted it, e.g. MQTT PUBACK; no word from the team itself) | ``failed``
(gave up); ``folded`` rows were held back by storm control and are summarised by the digest row
named in `digest_key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.decisions.notify import Message
from alerts.decisions.paging import EVENT as PAGE_EVENT
from alerts.decisions.planning import Folded, OutboxView
from alerts.sql.repository import is_postgresql
from alerts.sql.tables import OutboxRow


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    PUBLISHED = "published"
    FAILED = "failed"
    FOLDED = "folded"


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row: what a `Channel` sends."""

    id: int
    key: str
    channel: str
    target: str
    content_type: str
    body: bytes
    team_id: str
    event: str
    incident_id: str | None
    secret_env: str | None
    attempts: int  # attempts made before this one
    give_up_ms: int


async def enqueue(
    session: AsyncSession, messages: Iterable[Message], now_ms: int, status: Status = Status.PENDING
) -> list[Message]:
    """Add messages not already in the outbox; returns the ones added."""
    messages = list({(m.key, m.channel): m for m in messages}.values())
    if not messages:
        return []
    pairs = [(m.key, m.channel) for m in messages]
    query = select(OutboxRow.key, OutboxRow.channel).where(
        tuple_(OutboxRow.key, OutboxRow.channel).in_(pairs)
    )
    existing = {tuple(r) for r in (await session.execute(query)).all()}
    new = [m for m in messages if (m.key, m.channel) not in existing]
    if new:
        rows = [
            {
                **m.__dict__,
                "status": status.value,
                "attempts": 0,
                "created_ms": now_ms,
                "next_attempt_ms": now_ms,
            }
            for m in new
        ]
        dialect = postgresql if is_postgresql(session) else sqlite
        stmt = dialect.insert(OutboxRow).on_conflict_do_nothing(index_elements=["key", "channel"])
        await session.execute(stmt, rows)  # a concurrent writer's copy wins the race quietly
    return new


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    now_ms: int,
    *,
    limit: int,
    lease_ms: int,
    give_up_after_ms: int,
) -> list[Delivery]:
    """Lease up to `limit` due pending rows; the give-up clock starts at the first claim."""
    async with sessions.begin() as session:
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.status == Status.PENDING.value,
                OutboxRow.next_attempt_ms <= now_ms,
                or_(OutboxRow.claimed_until_ms.is_(None), OutboxRow.claimed_until_ms <= now_ms),
            )
            .order_by(OutboxRow.next_attempt_ms, OutboxRow.id)
            .limit(limit)
        )
        if is_postgresql(session):
            query = query.with_for_update(skip_locked=True)
        rows = (await session.scalars(query)).all()
        out = []
        for row in rows:
            row.claimed_until_ms = now_ms + lease_ms
            row.give_up_ms = row.give_up_ms or now_ms + give_up_after_ms
            out.append(_delivery(row))
        return out


def _delivery(row: OutboxRow) -> Delivery:
    return Delivery(
        row.id,
        row.key,
        row.channel,
        row.target,
        row.content_type,
        row.body.encode(),
        row.team_id,
        row.event,
        row.incident_id,
        row.secret_env,
        row.attempts,
        row.give_up_ms or 0,
    )


async def mark_sent(session: AsyncSession, row_id: int, now_ms: int, status: Status) -> None:
    """The channel reached `status` (delivered or published) for the row."""
    await _set(
        session,
        row_id,
        status=status.value,
        done_ms=now_ms,
        attempts=OutboxRow.attempts + 1,
        claimed_until_ms=None,
        last_error=None,
    )


async def mark_retry(session: AsyncSession, row_id: int, next_ms: int, error: str) -> None:
    await _set(
        session,
        row_id,
        next_attempt_ms=next_ms,
        attempts=OutboxRow.attempts + 1,
        claimed_until_ms=None,
        last_error=error,
    )


async def mark_failed(session: AsyncSession, row_id: int, now_ms: int, error: str) -> None:
    await _set(
        session,
        row_id,
        status=Status.FAILED.value,
        done_ms=now_ms,
        attempts=OutboxRow.attempts + 1,
        claimed_until_ms=None,
        last_error=error,
    )


async def _set(session: AsyncSession, row_id: int, **values: object) -> None:
    await session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))


async def view(session: AsyncSession, since_ms: int, *, folded: bool) -> OutboxView:
    """What storm control needs: per team, each key sent after `since_ms` with the time it was
    first written (folded rows excluded); with `folded`, the rows awaiting a digest."""
    query = (
        select(OutboxRow.team_id, OutboxRow.key, func.min(OutboxRow.created_ms))
        .where(OutboxRow.created_ms > since_ms, OutboxRow.status != Status.FOLDED.value,
               OutboxRow.event != PAGE_EVENT)  # pages are never folded, nor counted
        .group_by(OutboxRow.team_id, OutboxRow.key)
    )
    sent: dict[str, dict[str, int]] = {}
    for team, key, ts_ms in (await session.execute(query)).all():
        sent.setdefault(team, {})[key] = ts_ms
    return OutboxView(sent, await _undigested(session) if folded else {})


async def _undigested(session: AsyncSession) -> dict[str, list[Folded]]:
    """Folded rows not yet covered by a digest, by team, oldest first."""
    query = (
        select(OutboxRow.id, OutboxRow.key, OutboxRow.team_id, OutboxRow.incident_id)
        .where(OutboxRow.status == Status.FOLDED.value, OutboxRow.digest_key.is_(None))
        .order_by(OutboxRow.id)
    )
    out: dict[str, list[Folded]] = {}
    for row in (await session.execute(query)).all():
        out.setdefault(row.team_id, []).append(Folded(*row))
    return out


async def mark_digested(session: AsyncSession, row_ids: Sequence[int], digest_key: str) -> None:
    query = update(OutboxRow).where(OutboxRow.id.in_(row_ids)).values(digest_key=digest_key)
    await session.execute(query)


async def rows(session: AsyncSession, **where: object) -> list[OutboxRow]:
    """Outbox rows matching column equalities, in insertion order (for the API and tests)."""
    query = select(OutboxRow).filter_by(**where).order_by(OutboxRow.id)
    return list((await session.scalars(query)).all())


async def pending_count(session: AsyncSession) -> int:
    """Notifications still waiting to be delivered (the outbox depth)."""
    query = select(func.count()).where(OutboxRow.status == Status.PENDING.value)
    return int(await session.scalar(query) or 0)
