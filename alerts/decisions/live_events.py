"""The events the live stream (dashboard, WebSocket/SSE) gets for a decision: plain JSON-able
dicts with a ``type`` key, one per alert transition and one per incident timeline entry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alerts.decisions.grouping import IncidentEvent
from alerts.model import Transition

LiveEvent = dict[str, Any]


def live_events(
    transitions: Iterable[Transition], changes: Iterable[IncidentEvent]
) -> tuple[LiveEvent, ...]:
    return (*map(_alert_event, transitions), *map(_incident_event, changes))


def _alert_event(t: Transition) -> LiveEvent:
    a = t.alert
    return {
        "type": "alert",
        "kind": t.kind.value,
        "alert_id": a.id,
        "rule_id": a.rule_id,
        "subject": a.subject,
        "state": a.state.value,
        "ts_ms": t.ts_ms,
        "severity": a.severity.name.lower(),
        "category": a.category.value,
        "suppressed_by": t.suppressed_by,
    }


def _incident_event(e: IncidentEvent) -> LiveEvent:
    i = e.incident
    return {
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
