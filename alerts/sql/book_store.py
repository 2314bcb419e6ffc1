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

from sqlalchemy import func, select, text
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
from alerts.sql.tables import AlertChangeRow, LiveEventRow, SilenceRow, TimelineRow

SHARED_BOOK_LOCK = 0x75770001  # the advisory lock (PostgreSQL) of the alert decisions
TURN_WAIT_S = 120  # how long a decision waits for the other processes' decisions
Version = tuple[int | None, ...]
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


async def take_turn(session: AsyncSession) -> None:
    """For a store that several processes decide over (partitioned workers): wait, inside the
    caller's transaction, until no other process is deciding.

    On PostgreSQL this is a transaction-scoped advisory lock, released when the transaction
    ends, so decisions are made one at a time across processes. Waiting for another worker's
    decision is normal, not a fault: the wait may be longer than the usual lock timeout. Once
    the turn is taken, the usual lock timeout is back, so a table another client holds locked
    fails the decision soon (its detections are held and retried) rather than after the turn's
    long wait.
    """
    if repo.is_postgresql(session):
        usual = await session.scalar(text("SELECT current_setting('lock_timeout')"))
        await session.execute(text(f"SET LOCAL lock_timeout = '{TURN_WAIT_S}s'"))
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                              {"key": SHARED_BOOK_LOCK})
        await session.execute(text("SELECT set_config('lock_timeout', :usual, true)"),
                              {"usual": usual})


async def version(session: AsyncSession) -> Version:
    """What changes whenever any process changes what the book holds: the newest live event,
    alert change and timeline entry, and the silences (created, expired). Equal to what a
    process saw after its own last decision: no other process decided since."""
    query = select(
        select(func.max(LiveEventRow.id)).scalar_subquery(),
        select(func.max(AlertChangeRow.id)).scalar_subquery(),
        select(func.max(TimelineRow.id)).scalar_subquery(),
        select(func.count()).select_from(SilenceRow).scalar_subquery(),
        select(func.count()).where(SilenceRow.expired_ms.is_not(None)).scalar_subquery(),
    )
    return tuple((await session.execute(query)).one())


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
