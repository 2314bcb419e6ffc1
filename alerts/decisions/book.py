"""The alert book: one pure path from detections, or the passing of time, to a `Decision`.

`Book` holds what the decisions read: the open alerts and incidents, each incident's escalation
policy, the silences, and the configuration (routing, inhibition, storm control, device types
for routing and device locations for CAP). `apply` runs lifecycle → mute → announce (what a
silence or inhibition no longer hides) → grouping → dispatch of new incidents → notices → storm
folding; `tick` does the same without detections, plus the escalation and repeat timers, the
policy steps that page the people on duty (`paging`) and storm digests. People's actions on
alerts and incidents take the same path. The outbox's recent sends (`OutboxView`) come in as
an argument, loaded by the SQL side in the transaction that then saves the `Decision`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from alerts.decisions import incidents as machine
from alerts.decisions.announce import announce
from alerts.decisions.cap import CapContext, render_cap
from alerts.decisions.escalation import Action, due
from alerts.decisions.grouping import SYSTEM, IncidentBook, IncidentEvent
from alerts.decisions.inhibit import InhibitPolicy
from alerts.decisions.lifecycle import AlertBook
from alerts.decisions.live_events import LiveEvent, live_events
from alerts.decisions.mute import mute
from alerts.decisions.notify import Message, events, notices
from alerts.decisions.page_text import PageContext
from alerts.decisions.paging import run_steps
from alerts.decisions.planning import Mail, OutboxView, digests, plan
from alerts.decisions.silences import Silence
from alerts.decisions.storm import StormControl
from alerts.model import Alert, Incident, IncidentState, Transition
from alerts.routing import Policy, Route, RoutingConfig
from rules.detection import Detection

Located = Callable[[str], tuple[float, float] | None]  # device id → (lat, lon)
Change = tuple[Incident | None, Incident]  # (before, after); None: opened by this decision


def _nowhere(_device_id: str) -> tuple[float, float] | None:
    return None


@dataclass(frozen=True)
class Decision:
    """Everything one decision changed: the book after it, what to save, what to publish.

    `transitions` are the lifecycle's, after muting (recorded either way, `suppressed_by` says
    why one was held back); `alerts` and `incidents` are (before, after) pairs; `policies`
    names the escalation policy saved with each incident; `mail` are the outbox rows to write
    (sent, folded or digests); `live` the live-stream events once it is all saved.
    """

    book: Book
    transitions: tuple[Transition, ...]
    alerts: tuple[tuple[Alert | None, Alert], ...]
    incidents: tuple[Change, ...]
    policies: Mapping[str, str | None]
    mail: tuple[Mail, ...]
    events: tuple[IncidentEvent, ...]
    live: tuple[LiveEvent, ...]


@dataclass(frozen=True)
class Book:
    """The state the alert decisions read; never mutated, each decision returns a new one."""

    routing: RoutingConfig
    alerts: AlertBook = field(default_factory=AlertBook)
    incidents: IncidentBook = field(default_factory=IncidentBook)
    policies: Mapping[str, str | None] = field(default_factory=dict)  # incident id → policy id
    silences: tuple[Silence, ...] = ()
    inhibit: InhibitPolicy = field(default_factory=InhibitPolicy)
    storm: StormControl = field(default_factory=StormControl)
    device_types: Mapping[str, str] = field(default_factory=dict)
    locate: Located = _nowhere
    cap_context: CapContext = field(default_factory=lambda: CapContext("urbanwatch", "UTC"))
    paging: PageContext = field(default_factory=PageContext)

    # --- decisions --------------------------------------------------------------------------

    def apply(self, detections: Iterable[Detection], now_ms: int, outbox: OutboxView) -> Decision:
        """Fold the engine's detections in at `now_ms`: transitions, incidents, notices."""
        alerts, transitions = self.alerts.apply(detections, now_ms)
        return self._decide(alerts, transitions, now_ms, outbox)

    def tick(self, now_ms: int, outbox: OutboxView) -> Decision:
        """Time-driven work at `now_ms`: lifecycle timers, escalations and repeats, digests."""
        alerts, transitions = self.alerts.apply((), now_ms)
        return self._decide(alerts, transitions, now_ms, outbox, timers=True)

    def acknowledge_alert(
        self, alert_id: str, actor: str, now_ms: int, outbox: OutboxView
    ) -> Decision:
        alerts, t = self.alerts.acknowledge(alert_id, actor, now_ms)
        return self._decide(alerts, (t,), now_ms, outbox)

    def close_alerts(
        self,
        alert_ids: Collection[str],
        actor: str,
        now_ms: int,
        outbox: OutboxView,
        reason: str = "",
    ) -> Decision:
        """Close alerts in any state (device removed, rule changed); their incidents follow."""
        alerts, closed = self.alerts, []
        for alert_id in alert_ids:
            alerts, t = alerts.close(alert_id, actor, now_ms, reason)
            closed.append(t)
        return self._decide(alerts, tuple(closed), now_ms, outbox)

    def change_incident(
        self,
        before: Incident,
        after: Incident,
        policy_id: str | None,
        now_ms: int,
        outbox: OutboxView,
    ) -> Decision:
        """Record a person's change to a stored incident and the notices it calls for."""
        book = replace(self, incidents=self.incidents.put(after))
        return book._decision((), (), ((before, after),), {after.id: policy_id}, now_ms, outbox)

    # --- state ------------------------------------------------------------------------------

    def open_alerts(self) -> list[Alert]:
        return sorted(self.alerts.alerts.values(), key=lambda a: (a.started_ms, a.id))

    def with_silence(self, silence: Silence) -> Book:
        return replace(self, silences=(*self.silences, silence))

    def without_silence(self, silence_id: str) -> Book:
        return replace(self, silences=tuple(s for s in self.silences if s.id != silence_id))

    def with_topology(
        self, gateways: Mapping[str, str], neighbours: Mapping[str, frozenset[str]]
    ) -> Book:
        """The registry's gateways (for inhibition) and grid neighbours (for grouping)."""
        return replace(
            self,
            inhibit=replace(self.inhibit, gateways=dict(gateways)),
            incidents=replace(self.incidents, neighbours=dict(neighbours)),
        )

    def cap_xml(self, incident: Incident, sent_ms: int) -> bytes | None:
        """`incident` as CAP 1.2 XML; None when none of its devices is located."""
        points = [p for p in map(self.locate, incident.devices) if p is not None]
        return render_cap(incident, self.cap_context, sent_ms, points) if points else None

    # --- the path ---------------------------------------------------------------------------

    def _decide(
        self,
        alerts: AlertBook,
        transitions: tuple[Transition, ...],
        now_ms: int,
        outbox: OutboxView,
        *,
        timers: bool = False,
    ) -> Decision:
        live_silences = [s for s in self.silences if not s.expired_at(now_ms)]
        muted = mute(transitions, alerts.alerts.values(), live_silences, self.inhibit, now_ms,
                     self.device_types)
        muted, alerts = announce(muted, alerts, live_silences, self.inhibit, now_ms,
                                 self.device_types)
        incidents, grouped = self.incidents.apply(muted, now_ms)
        policies = dict(self.policies)
        changed = {e.incident.id: e.incident for e in grouped}
        for incident in list(changed.values()):
            if incident.state is IncidentState.NEW:
                changed[incident.id] = self._dispatch_new(incident, policies, now_ms)
        pages: list[Message] = []
        if timers:
            changed |= self._escalations(changed, policies, now_ms)
            pages = self._steps(changed, policies, now_ms)
        for incident in changed.values():
            incidents = incidents.put(incident)
        stored = {a.id: a for a in self.alerts.alerts.values()}
        alert_changes = {t.alert.id: (stored.get(t.alert.id), t.alert) for t in muted}
        incident_changes = tuple((self.incidents.incidents.get(i), c) for i, c in changed.items())
        book = replace(self, alerts=alerts, incidents=incidents, policies=policies)
        return book._decision(
            muted,
            tuple(alert_changes.values()),
            incident_changes,
            policies,
            now_ms,
            outbox,
            timers=timers,
            pages=pages,
        )

    def _decision(
        self,
        muted: tuple[Transition, ...],
        alerts: tuple[tuple[Alert | None, Alert], ...],
        incidents: tuple[Change, ...],
        policies: Mapping[str, str | None],
        now_ms: int,
        outbox: OutboxView,
        *,
        timers: bool = False,
        pages: list[Message] | None = None,
    ) -> Decision:
        """The notices of `incidents`, through storm control (and digests on a tick), and
        `pages` of policy steps (never folded)."""
        planned = [n for before, after in incidents for n in notices(before, after)]
        mail, outbox = plan(planned, outbox, self.storm, self.routing, now_ms, self.cap_xml)
        if timers:
            mail += digests(outbox, self.storm, self.routing, now_ms)
        mail += tuple(Mail(m.key, (m,)) for m in pages or ())
        changes = events(incidents)
        live = live_events(muted, changes)
        return Decision(self, muted, alerts, incidents, policies, mail, changes, live)

    def _dispatch_new(
        self, incident: Incident, policies: dict[str, str | None], now_ms: int
    ) -> Incident:
        route = self._route(incident)
        policies[incident.id] = route.policy
        return machine.dispatch(incident, route.handler, route.team, SYSTEM, now_ms)

    def _route(self, incident: Incident) -> Route:
        types = [self.device_types[d] for d in incident.devices if d in self.device_types]
        district = incident.districts[0] if incident.districts else None
        return self.routing.route(incident.category, district, incident.severity, types)

    def _policy(self, incident: Incident, policy_id: str) -> Policy:
        """The incident's policy; if a routing reload removed it, the one of the route that
        covers the incident now, so its escalation goes on."""
        kept = next((p for p in self.routing.policies if p.id == policy_id), None)
        return kept or self.routing.policy(self._route(incident).policy)

    def _escalations(
        self, changed: dict[str, Incident], policies: dict[str, str | None], now_ms: int
    ) -> dict[str, Incident]:
        """Apply `escalation.due` to every incident open before this decision."""
        out = {}
        for incident_id, stored in self.incidents.incidents.items():
            incident = changed.get(incident_id, stored)
            policy_id = policies.get(incident_id)
            if incident.is_final or policy_id is None:
                continue
            decision = due(incident, self._policy(incident, policy_id), now_ms)
            if decision.action is Action.ESCALATE and decision.team_id is not None:
                handler, _team = self.routing.team(decision.team_id)
                out[incident_id] = machine.escalate(
                    incident, decision.level, handler.id, decision.team_id, SYSTEM, now_ms
                )
            elif decision.action is Action.REPEAT:
                detail = f"repeat notification to {incident.team_id}"
                out[incident_id] = machine.notified(incident, SYSTEM, now_ms, detail)
        return out

    def _steps(
        self, changed: dict[str, Incident], policies: Mapping[str, str | None], now_ms: int
    ) -> list[Message]:
        """Run the due policy steps of every open incident (updating `changed`); their pages."""
        pages: list[Message] = []
        for incident_id in list({**self.incidents.incidents, **changed}):
            incident = changed.get(incident_id) or self.incidents.incidents[incident_id]
            policy_id = policies.get(incident_id)
            if incident.is_final or policy_id is None:
                continue
            paged, sent = run_steps(
                incident, self._policy(incident, policy_id), self.routing, self.paging, now_ms
            )
            if paged is not incident:
                changed[incident_id] = paged
                pages += sent
        return pages
