"""The incident state machine: every change is checked, timed and attributed on the timeline.

new → dispatched → acknowledged → en_route → on_scene → resolved → closed; `reassigned` hands the
incident to another team (it is dispatched again from there) and `cancelled` ends a false alarm.
Functions return a new `Incident`; a change the machine forbids raises `TransitionError`.
"""

from __future__ import annotations

from dataclasses import replace

from alerts.errors import NotClosableError, NoteLimitError, TransitionError
from alerts.model import Incident, IncidentState, TimelineEntry, TimelineKind

S = IncidentState
_ACTIVE = (S.ACKNOWLEDGED, S.EN_ROUTE, S.ON_SCENE)

ALLOWED: dict[IncidentState, frozenset[IncidentState]] = {
    S.NEW: frozenset({S.DISPATCHED, S.CANCELLED}),
    S.DISPATCHED: frozenset({S.ACKNOWLEDGED, S.REASSIGNED, S.CANCELLED}),
    S.ACKNOWLEDGED: frozenset({S.EN_ROUTE, S.ON_SCENE, S.RESOLVED, S.REASSIGNED, S.CANCELLED}),
    S.EN_ROUTE: frozenset({S.ON_SCENE, S.RESOLVED, S.REASSIGNED, S.CANCELLED}),
    S.ON_SCENE: frozenset({S.RESOLVED, S.REASSIGNED, S.CANCELLED}),
    S.REASSIGNED: frozenset({S.DISPATCHED, S.CANCELLED}),
    S.RESOLVED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
"""Allowed state changes; anything else raises `TransitionError`."""


def record(
    incident: Incident, kind: TimelineKind, actor: str, now_ms: int, detail: str = ""
) -> Incident:
    """Append one timeline entry (no state change)."""
    entry = TimelineEntry(now_ms, actor, kind, detail)
    return replace(
        incident, timeline=(*incident.timeline, entry), updated_ms=max(incident.updated_ms, now_ms)
    )


def transition(
    incident: Incident, to: IncidentState, actor: str, now_ms: int, detail: str = ""
) -> Incident:
    """Move `incident` to state `to` if the machine allows it, and record who and when."""
    if to not in ALLOWED[incident.state]:
        raise TransitionError("incident", incident.id, incident.state, to)
    return record(replace(incident, state=to), TimelineKind(to.value), actor, now_ms, detail)


def dispatch(
    incident: Incident, handler_id: str, team_id: str, actor: str, now_ms: int
) -> Incident:
    """Hand the incident to a team; the acknowledgement deadline starts now (level 0)."""
    changed = transition(incident, S.DISPATCHED, actor, now_ms, f"{handler_id}/{team_id}")
    return replace(
        changed,
        handler_id=handler_id,
        team_id=team_id,
        escalation_level=0,
        dispatched_ms=now_ms,
        escalated_ms=None,
        acknowledged_ms=None,
        last_notified_ms=now_ms,
    )


def acknowledge(incident: Incident, actor: str, now_ms: int) -> Incident:
    """The team has seen it: stops the escalation timer."""
    return replace(transition(incident, S.ACKNOWLEDGED, actor, now_ms), acknowledged_ms=now_ms)


def en_route(incident: Incident, actor: str, now_ms: int, detail: str = "") -> Incident:
    return transition(incident, S.EN_ROUTE, actor, now_ms, detail)


def on_scene(incident: Incident, actor: str, now_ms: int, detail: str = "") -> Incident:
    return transition(incident, S.ON_SCENE, actor, now_ms, detail)


def resolve(incident: Incident, actor: str, now_ms: int, detail: str = "") -> Incident:
    """A responder says the situation is handled; closing waits for the alerts to clear."""
    return replace(transition(incident, S.RESOLVED, actor, now_ms, detail), resolved_ms=now_ms)


def close(incident: Incident, actor: str, now_ms: int) -> Incident:
    """Close a resolved incident whose alerts have all cleared."""
    if incident.state is not S.RESOLVED or incident.open_alert_ids:
        raise NotClosableError(incident.id, incident.state, incident.open_alert_ids)
    return replace(transition(incident, S.CLOSED, actor, now_ms), closed_ms=now_ms)


def closable(incident: Incident) -> bool:
    return incident.state is S.RESOLVED and not incident.open_alert_ids


def reassign(
    incident: Incident, handler_id: str, team_id: str, actor: str, now_ms: int, reason: str = ""
) -> Incident:
    """Give the incident to another team; `dispatch` it to them next."""
    detail = f"{handler_id}/{team_id}" + (f": {reason}" if reason else "")
    changed = transition(incident, S.REASSIGNED, actor, now_ms, detail)
    return replace(changed, handler_id=handler_id, team_id=team_id)


def cancel(incident: Incident, actor: str, now_ms: int, reason: str) -> Incident:
    """End a false alarm; its alerts keep their own lifecycle."""
    return transition(incident, S.CANCELLED, actor, now_ms, reason)


def note(incident: Incident, actor: str, now_ms: int, text: str, max_notes: int) -> Incident:
    """Add a note; `NoteLimitError` when the timeline holds `max_notes` notes already."""
    if sum(e.kind is TimelineKind.NOTE for e in incident.timeline) >= max_notes:
        raise NoteLimitError(incident.id, max_notes)
    return record(incident, TimelineKind.NOTE, actor, now_ms, text)


def photo(incident: Incident, actor: str, now_ms: int, name: str) -> Incident:
    """A photo from the scene was stored under `name`."""
    return record(incident, TimelineKind.PHOTO, actor, now_ms, name)


def notified(incident: Incident, actor: str, now_ms: int, detail: str) -> Incident:
    """Record a dispatch attempt or repeat notification (e.g. ``webhook ok``, ``mqtt failed``)."""
    return replace(
        record(incident, TimelineKind.NOTIFIED, actor, now_ms, detail), last_notified_ms=now_ms
    )


def escalate(
    incident: Incident, level: int, handler_id: str, team_id: str, actor: str, now_ms: int
) -> Incident:
    """The deadline was missed: hand the incident to the next level's team, restart the timer."""
    if incident.state is not S.DISPATCHED or level <= incident.escalation_level:
        here = f"{incident.state} at level {incident.escalation_level}"
        raise TransitionError("incident", incident.id, here, f"level {level}")
    detail = f"level {level}: {handler_id}/{team_id}"
    changed = record(incident, TimelineKind.ESCALATED, actor, now_ms, detail)
    return replace(
        changed,
        escalation_level=level,
        handler_id=handler_id,
        team_id=team_id,
        escalated_ms=now_ms,
        last_notified_ms=now_ms,
    )
