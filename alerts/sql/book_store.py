"""The SQL side of the alert book: load what a decision needs before it, save it after.

Used inside one caller's transaction: `load_book` restores the open alerts, open incidents
(with their escalation policies) and silences into a configured `Book`; `outbox_view` reads
what storm control needs; the pure `Book` decides; `save` writes the `Decision` (alerts and
their history, incidents and their timelines, outbox rows, digest marks, live events) and audit
records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.decisions.book import Book, Decision
from alerts.decisions.grouping import IncidentEvent
from alerts.decisions.lifecycle import AlertBook
from alerts.decisions.live_events import LiveEvent
from alerts.decisions.planning import OutboxView
from alerts.decisions.storm import Verdict
from alerts.model import Transition
from alerts.sql import live_backlog, outbox, records
from alerts.sql import repository as repo

SHARED_BOOK_LOCK = 0x75770001  # the advisory lock (PostgreSQL) of the alert decisions
Audit = tuple[str, ...]  # (actor, action, entity, entity_id[, detail])
_STATUS = {Verdict.SEND: outbox.Status.PENDING, Verdict.FOLD: outbox.Status.FOLDED}


@dataclass(frozen=True)
class Outcome:
    """What one saved decision did: transitions (muted), incident events, outbox keys, and
    the live events stored (with their ids) to publish once the transaction commits."""

    transitions: tuple[Transition, ...]
    events: tuple[IncidentEvent, ...]
    notified: tuple[str, ...]  # idempotency keys enqueued for sending
    folded: tuple[str, ...]  # keys held back by storm control (a digest follows)
    live: tuple[LiveEvent, ...]


async def load_book(session: AsyncSession, book: Book) -> Book:
    """`book` with the stored open alerts, open incidents and unexpired silences."""
    alerts = await repo.load_alerts(session, open_only=True)
    incidents = await repo.load_incidents(session, open_only=True)
    silences = await records.load_silences(session, include_expired=False)
    return replace(
        book,
        alerts=AlertBook.restore(alerts, book.alerts.config),
        incidents=replace(book.incidents, incidents={i.id: i for i, _ in incidents}),
        policies={i.id: policy for i, policy in incidents},
        silences=tuple(records.silence_of(row) for row in silences),
    )


async def take_turn(session: AsyncSession, book: Book) -> Book:
    """For a store that several processes decide over (partitioned workers): wait until no
    other process is deciding, then `book` as stored.

    On PostgreSQL the wait is a transaction-scoped advisory lock, released when the caller's
    transaction ends, so decisions are made one at a time across processes and each starts
    from what the previous one saved.
    """
    if repo.is_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                              {"key": SHARED_BOOK_LOCK})
    return await load_book(session, book)


async def outbox_view(
    session: AsyncSession, book: Book, now_ms: int, *, digests: bool = False
) -> OutboxView:
    """The recent sends storm control counts at `now_ms`; with `digests`, the folded rows."""
    return await outbox.view(session, now_ms - book.storm.window_ms, folded=digests)


async def save(
    session: AsyncSession, decision: Decision, now_ms: int, audits: Iterable[Audit] = ()
) -> Outcome:
    """Write `decision`; the outcome names the outbox keys that were new."""
    await repo.save_alerts(session, decision.alerts)
    await repo.save_incidents(session, decision.incidents, decision.policies)
    sent: list[str] = []
    folded: list[str] = []
    for mail in decision.mail:
        added = await outbox.enqueue(session, mail.messages, now_ms, _STATUS[mail.verdict])
        if mail.digested:
            await outbox.mark_digested(session, mail.digested, mail.key)
            sent.append(mail.key)
        elif added:
            (sent if mail.verdict is Verdict.SEND else folded).append(mail.key)
    for audit in audits:
        await records.audit(session, now_ms, *audit)
    live = await live_backlog.append(session, decision.live, now_ms)
    return Outcome(decision.transitions, decision.events, tuple(sent), tuple(folded), live)
