"""Grouping: related alerts become one incident, so a flood is one incident, not forty alerts.

An alert joins an open incident of the same category whose area it touches — same district,
or a grid cell equal or neighbouring (per the `neighbours` mapping) to one of the incident's
cells — if one of the incident's alerts still fires or its last alert came within
`window_ms`. If several qualify, the most recent one wins; incidents are never merged. Only
dispatchable transitions open or join incidents, so silenced, inhibited and flapping alerts
do not summon anyone; clears are followed for every member, and a resolved incident closes
itself when its last alert clears.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from alerts.decisions import incidents as machine
from alerts.model import (
    Alert,
    Incident,
    IncidentState,
    Member,
    TimelineEntry,
    TimelineKind,
    Transition,
    TransitionKind,
    stable_id,
)
from rules.detection import Category, Severity

SYSTEM = "system"
_JOINABLE = frozenset(
    {
        IncidentState.NEW,
        IncidentState.DISPATCHED,
        IncidentState.ACKNOWLEDGED,
        IncidentState.EN_ROUTE,
        IncidentState.ON_SCENE,
        IncidentState.REASSIGNED,
    }
)
_ENDING = frozenset({TransitionKind.CLEARED, TransitionKind.CLOSED})

EVENT_NAME: dict[Category, str] = {
    Category.ENVIRONMENT: "Pollution warning",
    Category.TRAFFIC: "Traffic disruption",
    Category.SAFETY: "Safety hazard",
    Category.FLOOD: "Flood warning",
    Category.FIRE: "Fire alarm",
    Category.INFRASTRUCTURE: "Infrastructure warning",
    Category.DEVICE: "Device faults",
}


@dataclass(frozen=True)
class GroupingConfig:
    window_ms: int = 30 * 60_000
    min_severity: Severity = Severity.BLUE  # info alerts are recorded but open no incident


@dataclass(frozen=True)
class IncidentEvent:
    """One change to one incident: the incident after it, and the timeline entry it added."""

    incident: Incident
    entry: TimelineEntry


@dataclass(frozen=True)
class IncidentBook:
    """The incidents that are not closed or cancelled. Never mutated."""

    incidents: Mapping[str, Incident] = field(default_factory=dict)
    config: GroupingConfig = field(default_factory=GroupingConfig)
    neighbours: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def put(self, incident: Incident) -> IncidentBook:
        """Store an incident changed by `alerts.decisions.incidents`; final ones leave the book."""
        kept = {k: v for k, v in self.incidents.items() if k != incident.id}
        if not incident.is_final:
            kept[incident.id] = incident
        return replace(self, incidents=kept)

    def of_alert(self, alert_id: str) -> Incident | None:
        for incident in self.incidents.values():
            if alert_id in incident.alert_ids:
                return incident
        return None

    def apply(
        self, transitions: Iterable[Transition], now_ms: int
    ) -> tuple[IncidentBook, tuple[IncidentEvent, ...]]:
        """Open, grow, update and auto-close incidents from alert transitions.

        Args:
            transitions: the output of the mute stage.
            now_ms: the time written on the timeline entries.

        Returns:
            The new book and one event per timeline entry added.
        """
        book = self
        events: list[IncidentEvent] = []
        for t in transitions:
            incident = book.of_alert(t.alert.id)
            if incident is not None:
                changed = _follow(incident, t, now_ms)
            elif _opens(t, book.config):
                changed = _join_or_open(book, t.alert, now_ms)
            else:
                continue
            before = book.incidents.get(changed.id)
            added = changed.timeline[len(before.timeline) if before else 0 :]
            events.extend(IncidentEvent(changed, entry) for entry in added)
            book = book.put(changed)
        return book, tuple(events)

    def related(self, alert: Alert, ts_ms: int) -> Incident | None:
        """The most recent open incident `alert` belongs with, or None."""
        window = self.config.window_ms
        candidates = [
            inc
            for inc in self.incidents.values()
            if inc.state in _JOINABLE
            and inc.category is alert.category
            and (ts_ms - inc.last_alert_ms <= window or _live(inc))
            and self._touches(inc, alert)
        ]
        return max(candidates, key=lambda i: (i.last_alert_ms, i.id), default=None)

    def _touches(self, incident: Incident, alert: Alert) -> bool:
        if alert.district and alert.district in incident.districts:
            return True
        if not alert.grid:
            return False
        near = {alert.grid, *self.neighbours.get(alert.grid, ())}
        return not near.isdisjoint(incident.grids)


def _live(incident: Incident) -> bool:
    """Whether one of its alerts still fires: a slowly spreading event (a flood rising cell
    after cell) stays one incident however long it takes."""
    return any(not m.cleared for m in incident.members)


def _opens(t: Transition, config: GroupingConfig) -> bool:
    return (
        t.dispatchable
        and t.raises
        and t.alert.is_active
        and t.alert.severity >= config.min_severity
    )


def _join_or_open(book: IncidentBook, alert: Alert, now_ms: int) -> Incident:
    member = _member(alert)
    incident = book.related(alert, alert.updated_ms)
    if incident is None:
        opened = Incident(
            id=stable_id("in", alert.id),
            title="",
            category=alert.category,
            state=IncidentState.NEW,
            members=(member,),
            opened_ms=now_ms,
            updated_ms=now_ms,
            last_alert_ms=alert.updated_ms,
        )
        opened = replace(opened, title=title(opened))
        detail = f"{alert.id} {alert.rule_id}"
        return machine.record(opened, TimelineKind.OPENED, SYSTEM, now_ms, detail)
    grown = replace(
        incident,
        members=(*incident.members, member),
        last_alert_ms=max(incident.last_alert_ms, alert.updated_ms),
    )
    grown = replace(grown, title=title(grown))
    grown = machine.record(grown, TimelineKind.ALERT_ADDED, SYSTEM, now_ms, alert.id)
    return _severity_entry(incident, grown, now_ms)


def _follow(incident: Incident, t: Transition, now_ms: int) -> Incident:
    alert = t.alert
    if not t.raises and t.kind not in _ENDING:
        return incident
    ending = t.kind in _ENDING
    members = tuple(
        replace(m, severity=alert.severity, cleared=ending) if m.alert_id == alert.id else m
        for m in incident.members
    )
    changed = replace(incident, members=members)
    was_cleared = next(m.cleared for m in incident.members if m.alert_id == alert.id)
    if ending and not was_cleared:
        detail = f"{alert.id} ({t.reason})" if t.reason else alert.id
        changed = machine.record(changed, TimelineKind.ALERT_CLEARED, SYSTEM, now_ms, detail)
        if machine.closable(changed):
            return machine.close(changed, SYSTEM, now_ms)
        return changed
    if not ending and was_cleared:
        changed = replace(changed, last_alert_ms=max(changed.last_alert_ms, alert.updated_ms))
        changed = machine.record(changed, TimelineKind.ALERT_ADDED, SYSTEM, now_ms, alert.id)
    return _severity_entry(incident, changed, now_ms)


def _severity_entry(before: Incident, after: Incident, now_ms: int) -> Incident:
    if after.severity == before.severity:
        return after
    detail = f"{before.severity.name.lower()} → {after.severity.name.lower()}"
    return machine.record(after, TimelineKind.SEVERITY, SYSTEM, now_ms, detail)


def _member(alert: Alert) -> Member:
    return Member(
        alert.id, alert.rule_id, alert.severity, alert.device_id, alert.district, alert.grid
    )


def title(incident: Incident) -> str:
    """E.g. ``Flood warning — dongcheng (12 devices)``."""
    area = ", ".join(incident.districts) or ", ".join(incident.grids) or "unknown area"
    n = len(incident.devices) or len(incident.members)
    noun = "device" if incident.devices else "alert"
    return f"{EVENT_NAME[incident.category]} — {area} ({n} {noun}{'s' if n != 1 else ''})"
