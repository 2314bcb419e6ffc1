"""The alert service: the pipeline (`handle`, `tick`) plus what people do through the API —
incident and alert actions, silences, queries and reports.

Each incident action loads the incident fresh from SQL (its timeline includes the dispatcher's
entries), applies the pure state machine, lets the `Book` plan the notifications, and writes the
change, its notifications and an audit record in one transaction; a forbidden change raises
`TransitionError` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert

from alerts.decisions import incidents as machine
from alerts.decisions.grouping import SYSTEM
from alerts.decisions.reports import GroupBy, ReportRow, report
from alerts.decisions.silences import Silence
from alerts.errors import (
    RoutingError,
    SilenceError,
    TransitionError,
    UnknownIncidentError,
    UnknownSilenceError,
    UnknownTeamError,
)
from alerts.model import Alert, Incident, IncidentState
from alerts.pipeline import AlertPipeline
from alerts.sql import book_store, records
from alerts.sql import repository as repo
from alerts.sql.book_store import Outcome
from alerts.sql.repository import AlertQuery, AlertWithIncident, IncidentQuery
from alerts.sql.tables import SilenceRow

Change = Callable[[Incident], Incident]
S = IncidentState


class AlertService(AlertPipeline):
    async def acknowledge(self, incident_id: str, actor: str, now_ms: int) -> Incident:
        """The team has seen the incident: stops its escalation timer."""
        return await self._operate(
            incident_id,
            actor,
            now_ms,
            "acknowledge",
            lambda i: machine.acknowledge(i, actor, now_ms),
        )

    async def transition(
        self,
        incident_id: str,
        to: IncidentState,
        actor: str,
        now_ms: int,
        detail: str = "",
    ) -> Incident:
        """Move an incident along its state machine (acknowledged … closed, cancelled, dispatched
        again after a reassignment); `detail` is the note or reason on the timeline."""
        steps: dict[IncidentState, Change] = {
            S.ACKNOWLEDGED: lambda i: machine.acknowledge(i, actor, now_ms),
            S.EN_ROUTE: lambda i: machine.en_route(i, actor, now_ms, detail),
            S.ON_SCENE: lambda i: machine.on_scene(i, actor, now_ms, detail),
            S.RESOLVED: lambda i: machine.resolve(i, actor, now_ms, detail),
            S.CLOSED: lambda i: machine.close(i, actor, now_ms),
            S.CANCELLED: lambda i: machine.cancel(i, actor, now_ms, detail),
            S.DISPATCHED: lambda i: machine.dispatch(
                i, i.handler_id or "", i.team_id or "", actor, now_ms
            ),
        }
        step = steps.get(to)
        if step is None:  # new never comes back; reassigned needs a team: use `reassign`
            found = await self.incident(incident_id)
            raise TransitionError("incident", incident_id, found.state, to)
        return await self._operate(incident_id, actor, now_ms, to.value, step, detail)

    async def reassign(
        self,
        incident_id: str,
        team_id: str,
        actor: str,
        now_ms: int,
        reason: str = "",
    ) -> Incident:
        """Hand the incident to another team and dispatch it to them at once."""
        try:
            handler, _ = self.routing.team(team_id)
        except UnknownTeamError:
            raise RoutingError("routing", [f"unknown team {team_id!r}"]) from None

        def step(i: Incident) -> Incident:
            moved = machine.reassign(i, handler.id, team_id, actor, now_ms, reason)
            return machine.dispatch(moved, handler.id, team_id, actor, now_ms)

        return await self._operate(incident_id, actor, now_ms, "reassign", step, team_id)

    async def note(
        self, incident_id: str, actor: str, now_ms: int, text: str, max_notes: int
    ) -> Incident:
        """Add a note to the timeline; `NoteLimitError` past `max_notes` notes."""
        return await self._operate(
            incident_id, actor, now_ms, "note",
            lambda i: machine.note(i, actor, now_ms, text, max_notes), text,
        )

    async def add_photo(self, incident_id: str, actor: str, now_ms: int, name: str) -> Incident:
        """Put the photo stored as `name` on the incident's timeline."""
        return await self._operate(
            incident_id, actor, now_ms, "photo", lambda i: machine.photo(i, actor, now_ms, name),
            name,
        )

    async def cancel(self, incident_id: str, actor: str, now_ms: int, reason: str) -> Incident:
        """A false alarm: the incident ends and its team is told."""
        return await self.transition(incident_id, S.CANCELLED, actor, now_ms, reason)

    async def _operate(
        self,
        incident_id: str,
        actor: str,
        now_ms: int,
        action: str,
        change: Change,
        detail: str = "",
    ) -> Incident:
        async with self._lock:
            await self._ready()
            async with self._sessions.begin() as session:
                await self._take_turn(session)
                found = await repo.load_incidents(session, ids=[incident_id])
                if not found:
                    raise UnknownIncidentError(incident_id)
                stored, policy_id = found[0]
                after = change(stored)
                view = await book_store.outbox_view(session, self._book, now_ms)
                decision = self._book.change_incident(stored, after, policy_id, now_ms, view)
                audit = (actor, action, "incident", incident_id, detail)
                outcome = await book_store.save(session, decision, now_ms, [audit])
                await self._saw(session)
            self._book = decision.book
            self._publish(outcome)
            return after

    # --- alerts ---------------------------------------------------------------------------

    async def acknowledge_alert(self, alert_id: str, actor: str, now_ms: int) -> Alert:
        async with self._lock:
            await self._ready()
            outcome = await self._commit(
                lambda b, view: b.acknowledge_alert(alert_id, actor, now_ms, view),
                now_ms,
                audits=[(actor, "acknowledge", "alert", alert_id)],
            )
            return outcome.transitions[0].alert

    async def close_alert(self, alert_id: str, actor: str, now_ms: int) -> Alert:
        """Close an alert in any state (e.g. its device was removed); its incident follows."""
        async with self._lock:
            await self._ready()
            outcome = await self._commit(
                lambda b, view: b.close_alerts([alert_id], actor, now_ms, view),
                now_ms,
                audits=[(actor, "close", "alert", alert_id)],
            )
            return outcome.transitions[0].alert

    async def close_open_alerts(
        self, which: Callable[[Alert], bool], reason: str, now_ms: int
    ) -> tuple[Alert, ...]:
        """Close every open alert `which` selects, e.g. of a rule that changed or a device that
        left service (no engine will report them cleared); their incidents note `reason`."""
        async with self._lock:
            await self._ready()
            ids = [a.id for a in self._book.open_alerts() if which(a)]
            if not ids:
                return ()
            outcome = await self._commit(
                lambda b, view: b.close_alerts(ids, SYSTEM, now_ms, view, reason),
                now_ms,
                audits=[(SYSTEM, "close", "alert", alert_id, reason) for alert_id in ids],
            )
            return tuple(t.alert for t in outcome.transitions)

    def open_alerts(self) -> list[Alert]:
        return self._book.open_alerts()

    async def find_alerts(self, query: AlertQuery) -> tuple[list[Alert], int]:
        """The page of recorded alerts `query` asks for, newest first, and how many match."""
        async with self._sessions() as session:
            return await repo.find_alerts(session, query)

    async def find_alert(
        self, alert_id: str, visible_teams: frozenset[str] | None = None
    ) -> AlertWithIncident | None:
        """A recorded alert with its history and incident; None if unknown or, for
        `visible_teams` (None: all), held by no incident of theirs."""
        async with self._sessions() as session:
            return await repo.find_alert(session, alert_id, visible_teams)

    # --- silences -------------------------------------------------------------------------

    async def create_silence(self, silence: Silence, now_ms: int) -> Silence:
        async with self._lock:
            await self._ready()
            async with self._sessions.begin() as session:
                if await session.get(SilenceRow, silence.id) is not None:
                    raise SilenceError(f"silence {silence.id} already exists")
                await session.execute(
                    insert(SilenceRow).values(records.silence_row(silence, now_ms))
                )
                await records.audit(
                    session, now_ms, silence.author, "create", "silence", silence.id, silence.reason
                )
            self._book = self._book.with_silence(silence)
            return silence

    async def expire_silence(self, silence_id: str, actor: str, now_ms: int) -> None:
        async with self._lock:
            await self._ready()
            async with self._sessions.begin() as session:
                if not await records.expire_silence(session, silence_id, now_ms):
                    raise UnknownSilenceError(silence_id)
                await records.audit(session, now_ms, actor, "expire", "silence", silence_id)
            self._book = self._book.without_silence(silence_id)

    async def silences(self, *, include_expired: bool = False) -> list[Silence]:
        """Stored silences; without `include_expired`, those not expired by hand."""
        async with self._sessions() as session:
            rows = await records.load_silences(session, include_expired=include_expired)
        return [records.silence_of(r) for r in rows]

    # --- queries and reports --------------------------------------------------------------

    async def incident(self, incident_id: str) -> Incident:
        """An incident with its full timeline (including dispatch attempts)."""
        async with self._sessions() as session:
            found = await repo.load_incidents(session, ids=[incident_id])
        if not found:
            raise UnknownIncidentError(incident_id)
        return found[0][0]

    async def incidents(self, *, open_only: bool = True) -> list[Incident]:
        async with self._sessions() as session:
            found = await repo.load_incidents(session, open_only=open_only)
        return [i for i, _ in found]

    async def find_incidents(self, query: IncidentQuery) -> tuple[list[Incident], int]:
        """The page of incidents `query` asks for, newest first, and how many match in all."""
        async with self._sessions() as session:
            return await repo.find_incidents(session, query)

    def cap(self, incident: Incident, sent_ms: int) -> bytes | None:
        """`incident` as CAP 1.2 XML sent at `sent_ms`; None when no device of it is located."""
        return self._book.cap_xml(incident, sent_ms)

    async def report(
        self,
        start_ms: int,
        end_ms: int,
        group_by: GroupBy | str,
        policy_id: str | None = None,
    ) -> tuple[ReportRow, ...]:
        """MTTA/MTTR/SLA breaches/escalations for incidents opened in ``[start_ms, end_ms)``;
        the SLA is `policy_id`'s deadline (default: the catch-all route's policy)."""
        policy = self.routing.policy(policy_id or self.routing.routes[-1].policy)
        async with self._sessions() as session:
            found = await repo.load_incidents(session, opened_range_ms=(start_ms, end_ms))
        incidents = [i for i, _ in found]
        return report(incidents, start_ms, end_ms, GroupBy(group_by), policy.ack_deadline_ms)


__all__ = ["AlertQuery", "AlertService", "AlertWithIncident", "IncidentQuery", "Outcome"]
