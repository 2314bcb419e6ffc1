"""The alert pipeline (the core of `AlertService`): the pure decisions, made durable.

``handle`` and ``tick`` each open ONE transaction: load what the decision needs (the outbox's
recent sends), let the pure `Book` decide (`alerts.decisions.book`), save the `Decision`
(`alerts.sql.book_store`, live events included). Only after it commits is the book swapped
and are the stored live events published, so a failed write leaves nothing half-done. The book
is restored from SQL on first use, so a new service over the same database carries on where
the old one stopped. With `shared` (several processes deciding over one PostgreSQL store:
partitioned workers, each serving the API), every decision first takes its turn
(`book_store.take_turn`) and reloads the book as stored if another process changed it since
this one's last decision (`book_store.version`), so no process decides from a stale copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.decisions.book import Book, Decision, Located
from alerts.decisions.cap import CapContext
from alerts.decisions.grouping import GroupingConfig, IncidentBook
from alerts.decisions.inhibit import InhibitPolicy
from alerts.decisions.lifecycle import AlertBook, LifecycleConfig
from alerts.decisions.page_text import PageContext
from alerts.decisions.planning import OutboxView
from alerts.decisions.storm import StormControl
from alerts.routing import RoutingConfig
from alerts.sql import book_store, records
from alerts.sql.book_store import Audit, Outcome
from devices.clock import now_ms
from rules.detection import Detection

Decide = Callable[[Book, OutboxView], Decision]


class AlertPipeline:
    """The book, `handle` and `tick`; `alerts.service.AlertService` adds the people's actions."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        routing: RoutingConfig,
        *,
        lifecycle: LifecycleConfig | None = None,
        grouping: GroupingConfig | None = None,
        neighbours: Mapping[str, frozenset[str]] | None = None,
        inhibit: InhibitPolicy | None = None,
        storm: StormControl | None = None,
        device_types: Mapping[str, str] | None = None,
        locate: Located | None = None,
        cap: CapContext | None = None,
        paging: PageContext | None = None,
        hub: LiveHub | None = None,
        clock_ms: Callable[[], int] = now_ms,
        shared: bool = False,
    ) -> None:
        self._sessions = sessions
        self._shared = shared
        self._seen: book_store.Version | None = None  # shared: the store after our last change
        self._book = Book(
            routing,
            AlertBook(config=lifecycle or LifecycleConfig()),
            IncidentBook(config=grouping or GroupingConfig(), neighbours=neighbours or {}),
            inhibit=inhibit or InhibitPolicy(),
            storm=storm or StormControl(),
            # not `or {}`: a live view of a registry that is empty at start still fills in later
            device_types={} if device_types is None else device_types,
            locate=locate or (lambda _device: None),
            cap_context=cap or CapContext(sender="urbanwatch", tz="UTC"),
            paging=paging or PageContext(),
        )
        self._hub = hub
        self._clock_ms = clock_ms
        self._lock = asyncio.Lock()
        self._loaded = False

    @property
    def routing(self) -> RoutingConfig:
        return self._book.routing

    # --- state ----------------------------------------------------------------------------

    async def restore(self) -> None:
        """(Re)load open alerts, open incidents and silences from SQL; snapshot the handlers."""
        async with self._sessions.begin() as session:
            book = await book_store.load_book(session, self._book)
            await records.save_handlers(session, self.routing, self._clock_ms())
        self._book = book
        self._loaded = True

    async def _ready(self) -> None:
        if not self._loaded:
            await self.restore()

    async def set_routing(self, routing: RoutingConfig) -> None:
        """Swap in a validated routing config (hot reload); open incidents keep their teams."""
        async with self._lock, self._sessions.begin() as session:
            await records.save_handlers(session, routing, self._clock_ms())
        self._book = replace(self._book, routing=routing)

    async def set_topology(
        self, gateways: Mapping[str, str], neighbours: Mapping[str, frozenset[str]]
    ) -> None:
        """Swap in the registry's gateways (child device → gateway, for inhibition) and the
        geography's grid neighbours (for grouping)."""
        async with self._lock:
            self._book = self._book.with_topology(gateways, neighbours)

    # --- the pipeline -----------------------------------------------------------------------

    async def handle(self, detections: Iterable[Detection], now_ms: int) -> Outcome:
        """Apply detections at `now_ms` and persist everything they caused in one transaction."""
        async with self._lock:
            await self._ready()
            return await self._commit(lambda b, view: b.apply(detections, now_ms, view), now_ms)

    async def tick(self, now_ms: int) -> Outcome:
        """Time-driven work at `now_ms`: lifecycle timers, escalation/repeats, storm digests."""
        async with self._lock:
            await self._ready()
            return await self._commit(lambda b, view: b.tick(now_ms, view), now_ms, digests=True)

    async def _commit(
        self, decide: Decide, now_ms: int, *, digests: bool = False, audits: Iterable[Audit] = ()
    ) -> Outcome:
        """Load, decide, save in one transaction; then swap the book and publish. Call it
        holding the lock."""
        async with self._sessions.begin() as session:
            await self._take_turn(session)
            view = await book_store.outbox_view(session, self._book, now_ms, digests=digests)
            decision = decide(self._book, view)
            outcome = await book_store.save(session, decision, now_ms, audits)
            await self._saw(session)
        self._book = decision.book
        self._publish(outcome)
        return outcome

    async def _take_turn(self, session: AsyncSession) -> None:
        """Shared: wait for other processes' decisions; reload the book when one changed it."""
        if self._shared:
            await book_store.take_turn(session)
            if await book_store.version(session) != self._seen:
                self._book = await book_store.load_book(session, self._book)

    async def _saw(self, session: AsyncSession) -> None:
        """Shared: note the store's version after this process's own change (still holding
        the turn), so the next decision reloads only if another process changed it."""
        if self._shared:
            self._seen = await book_store.version(session)

    def _publish(self, outcome: Outcome) -> None:
        if self._hub is not None:
            for event in outcome.live:
                self._hub.publish(event)
