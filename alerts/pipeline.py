"""The alert pipeline (the core of `AlertService`): the pure decisions, made durable.

``handle`` runs lifecycle → mute → group → route/dispatch and writes the resulting alerts,
incidents, timeline entries and outbox rows in ONE transaction; only after it commits are the
in-memory books swapped and live events published, so a failed write leaves nothing half-done.
``tick`` does the time-driven part (flapping settle, closing cleared alerts, escalation and
repeat timers computed from stored times, storm digests). State is restored from SQL on first
use, so a new service over the same database carries on where the old one stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.decisions import incidents as machine
from alerts.decisions.cap import CapContext, render_cap
from alerts.decisions.escalation import Action, due
from alerts.decisions.grouping import SYSTEM, GroupingConfig, IncidentBook, IncidentEvent
from alerts.decisions.inhibit import InhibitPolicy
from alerts.decisions.lifecycle import AlertBook, LifecycleConfig
from alerts.decisions.mute import mute
from alerts.decisions.notify import events, notices
from alerts.decisions.planning import Planner
from alerts.decisions.silences import Silence
from alerts.decisions.storm import StormControl
from alerts.model import Incident, Transition
from alerts.routing import RoutingConfig
from alerts.sql import records
from alerts.sql import repository as repo
from rules.detection import Detection

Located = Callable[[str], tuple[float, float] | None]  # device id → (lat, lon)


@dataclass(frozen=True)
class Outcome:
    """What one `handle`/`tick` did: transitions (muted), incident events, outbox keys."""

    transitions: tuple[Transition, ...]
    events: tuple[IncidentEvent, ...]
    notified: tuple[str, ...]  # idempotency keys enqueued for sending
    folded: tuple[str, ...]  # keys held back by storm control (a digest follows)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AlertPipeline:
    """State, `handle` and `tick`; `alerts.service.AlertService` adds the people's actions."""

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
        hub: LiveHub | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self._sessions = sessions
        self.routing = routing
        self._lifecycle = lifecycle or LifecycleConfig()
        self._grouping = grouping or GroupingConfig()
        self._neighbours = neighbours or {}
        self._inhibit = inhibit or InhibitPolicy()
        self._planner = Planner(lambda: self.routing, storm or StormControl(), self._render_cap)
        self._device_types = device_types or {}
        self._locate = locate or (lambda _device: None)
        self._cap = cap or CapContext(sender="urbanwatch", tz="UTC")
        self._hub = hub
        self._clock_ms = clock_ms
        self._lock = asyncio.Lock()
        self._loaded = False
        self._alerts = AlertBook(config=self._lifecycle)
        self._incidents = IncidentBook(config=self._grouping, neighbours=self._neighbours)
        self._policies: dict[str, str | None] = {}
        self._silences: list[Silence] = []

    # --- state ----------------------------------------------------------------------------

    async def restore(self) -> None:
        """(Re)load open alerts, open incidents and silences from SQL; snapshot the handlers."""
        async with self._sessions.begin() as session:
            alerts = await repo.load_alerts(session, open_only=True)
            incidents = await repo.load_incidents(session, open_only=True)
            silences = await records.load_silences(session, include_expired=False)
            await records.save_handlers(session, self.routing, self._clock_ms())
        self._alerts = AlertBook.restore(alerts, self._lifecycle)
        self._incidents = IncidentBook(
            {i.id: i for i, _ in incidents}, self._grouping, self._neighbours
        )
        self._policies = {i.id: policy for i, policy in incidents}
        self._silences = [records.silence_of(row) for row in silences]
        self._loaded = True

    async def _ready(self) -> None:
        if not self._loaded:
            await self.restore()

    async def set_routing(self, routing: RoutingConfig) -> None:
        """Swap in a validated routing config (hot reload); open incidents keep their teams."""
        async with self._lock, self._sessions.begin() as session:
            await records.save_handlers(session, routing, self._clock_ms())
        self.routing = routing

    async def set_topology(
        self, gateways: Mapping[str, str], neighbours: Mapping[str, frozenset[str]]
    ) -> None:
        """Swap in the registry's gateways (child device → gateway, for inhibition) and the
        geography's grid neighbours (for grouping)."""
        async with self._lock:
            self._inhibit = replace(self._inhibit, gateways=dict(gateways))
            self._neighbours = dict(neighbours)
            self._incidents = replace(self._incidents, neighbours=self._neighbours)

    # --- the pipeline -----------------------------------------------------------------------

    async def handle(self, detections: Iterable[Detection], now_ms: int) -> Outcome:
        """Apply detections at `now_ms` and persist everything they caused in one transaction."""
        async with self._lock:
            await self._ready()
            book, transitions = self._alerts.apply(detections, now_ms)
            return await self._commit(book, transitions, now_ms)

    async def tick(self, now_ms: int) -> Outcome:
        """Time-driven work at `now_ms`: lifecycle timers, escalation/repeats, storm digests."""
        async with self._lock:
            await self._ready()
            book, transitions = self._alerts.apply((), now_ms)
            return await self._commit(book, transitions, now_ms, timers=True)

    async def _commit(
        self,
        book: AlertBook,
        transitions: tuple[Transition, ...],
        now_ms: int,
        *,
        timers: bool = False,
        audits: Iterable[tuple[str, ...]] = (),  # (actor, action, entity, entity_id[, detail])
    ) -> Outcome:
        silences = [s for s in self._silences if not s.expired_at(now_ms)]
        muted = mute(transitions, book.alerts.values(), silences, self._inhibit, now_ms)
        ibook, grouped = self._incidents.apply(muted, now_ms)
        policies = dict(self._policies)
        changed = {e.incident.id: e.incident for e in grouped}
        for incident in list(changed.values()):
            if incident.state is machine.S.NEW:
                changed[incident.id] = self._dispatch_new(incident, policies, now_ms)
        if timers:
            changed |= self._escalations(changed, policies, now_ms)
        for incident in changed.values():
            ibook = ibook.put(incident)
        before_alerts = {a.id: a for a in self._alerts.alerts.values()}
        alert_changes = {t.alert.id: (before_alerts.get(t.alert.id), t.alert) for t in muted}
        incident_changes = [(self._incidents.incidents.get(i), inc) for i, inc in changed.items()]
        planned = [n for before, after in incident_changes for n in notices(before, after)]
        async with self._sessions.begin() as session:
            await repo.save_alerts(session, alert_changes.values())
            await repo.save_incidents(session, incident_changes, policies)
            sent, folded = await self._planner.enqueue(session, planned, now_ms)
            if timers:
                sent += await self._planner.digests(session, now_ms)
            for audit in audits:
                await records.audit(session, now_ms, *audit)
        self._alerts, self._incidents, self._policies = book, ibook, policies
        changes = events(incident_changes)
        self._publish(muted, changes)
        return Outcome(muted, changes, tuple(sent), tuple(folded))

    def _dispatch_new(
        self, incident: Incident, policies: dict[str, str | None], now_ms: int
    ) -> Incident:
        types = [self._device_types[d] for d in incident.devices if d in self._device_types]
        district = incident.districts[0] if incident.districts else None
        route = self.routing.route(incident.category, district, incident.severity, types)
        policies[incident.id] = route.policy
        return machine.dispatch(incident, route.handler, route.team, SYSTEM, now_ms)

    def _escalations(
        self, changed: dict[str, Incident], policies: dict[str, str | None], now_ms: int
    ) -> dict[str, Incident]:
        """Apply `escalation.due` to every open incident, from its stored times."""
        out = {}
        for incident_id, stored in self._incidents.incidents.items():
            incident = changed.get(incident_id, stored)
            policy_id = policies.get(incident_id)
            if incident.is_final or policy_id is None:
                continue
            decision = due(incident, self.routing.policy(policy_id), now_ms)
            if decision.action is Action.ESCALATE and decision.team_id is not None:
                handler, _team = self.routing.team(decision.team_id)
                out[incident_id] = machine.escalate(
                    incident, decision.level, handler.id, decision.team_id, SYSTEM, now_ms
                )
            elif decision.action is Action.REPEAT:
                detail = f"repeat notification to {incident.team_id}"
                out[incident_id] = machine.notified(incident, SYSTEM, now_ms, detail)
        return out

    def _render_cap(self, incident: Incident, sent_ms: int) -> bytes | None:
        points = [p for p in map(self._locate, incident.devices) if p is not None]
        return render_cap(incident, self._cap, sent_ms, points) if points else None

    def _publish(self, transitions: Iterable[Transition], changes: Iterable[IncidentEvent]) -> None:
        if self._hub is None:
            return
        for t in transitions:
            a = t.alert
            self._hub.publish(
                {
                    "type": "alert",
                    "kind": t.kind.value,
                    "alert_id": a.id,
                    "rule_id": a.rule_id,
                    "subject": a.subject,
                    "state": a.state.value,
                    "ts_ms": t.ts_ms,
                    "severity": a.severity.name.lower(),
                    "suppressed_by": t.suppressed_by,
                }
            )
        for e in changes:
            i = e.incident
            self._hub.publish(
                {
                    "type": "incident",
                    "kind": e.entry.kind.value,
                    "incident_id": i.id,
                    "state": i.state.value,
                    "severity": i.severity.name.lower(),
                    "team_id": i.team_id,
                    "actor": e.entry.actor,
                    "detail": e.entry.detail,
                    "ts_ms": e.entry.ts_ms,
                }
            )
