"""What a notification says and where it goes: outbox messages for each of a team's channels.

Pure. A `Notice` is one event of one incident for one team; its idempotency key
``{incident}:{event}:{seq}:{team}`` uses the index of the timeline entry that caused it, so
planning the same change again yields the same key. Bodies are JSON, or CAP 1.2 XML for a
webhook that asks for it (when the incident has located devices; otherwise JSON, since CAP
needs an area). MQTT targets are ``dispatch/{team}`` unless the routing file names a topic; the
channel adds the deployment's topic prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from alerts.decisions.grouping import SYSTEM, IncidentEvent
from alerts.errors import UnknownTeamError
from alerts.model import Incident, TimelineKind
from alerts.routing import MqttTarget, RoutingConfig, WebhookTarget

JSON = "application/json"
CAP_XML = "application/cap+xml"
CapRenderer = Callable[[Incident, int], bytes | None]  # None: the incident cannot be located


@dataclass(frozen=True)
class Message:
    """A notification for one channel of one team: one outbox row to write."""

    key: str
    channel: str
    target: str
    content_type: str
    body: str
    team_id: str
    event: str
    incident_id: str | None = None
    secret_env: str | None = None


@dataclass(frozen=True)
class Notice:
    incident: Incident
    event: str  # dispatched, escalated, repeat, severity, cancelled, closed
    seq: int
    team_id: str

    @property
    def key(self) -> str:
        return f"{self.incident.id}:{self.event}:{self.seq}:{self.team_id}"


def incident_json(incident: Incident) -> dict:
    return {
        "id": incident.id,
        "title": incident.title,
        "category": incident.category.value,
        "severity": incident.severity.name.lower(),
        "state": incident.state.value,
        "handler_id": incident.handler_id,
        "team_id": incident.team_id,
        "escalation_level": incident.escalation_level,
        "opened_ms": incident.opened_ms,
        "districts": list(incident.districts),
        "grids": list(incident.grids),
        "devices": list(incident.devices),
        "alert_ids": list(incident.alert_ids),
    }


def messages(
    notice: Notice, routing: RoutingConfig, now_ms: int, render_cap: CapRenderer
) -> list[Message]:
    """One outbox message per channel of the notice's team."""
    payload = {
        "key": notice.key,
        "event": notice.event,
        "team_id": notice.team_id,
        "ts_ms": now_ms,
        "incident": incident_json(notice.incident),
    }
    body = json.dumps(payload, separators=(",", ":"))
    return _for_team(
        notice.team_id,
        routing,
        notice.key,
        notice.event,
        notice.incident.id,
        body,
        lambda: render_cap(notice.incident, now_ms),
    )


def digest(
    team_id: str,
    keys: Sequence[str],
    incident_ids: Sequence[str],
    routing: RoutingConfig,
    now_ms: int,
    key: str,
) -> list[Message]:
    """The messages summarising notifications that storm control folded for a team."""
    payload = {
        "key": key,
        "event": "digest",
        "team_id": team_id,
        "ts_ms": now_ms,
        "count": len(keys),
        "keys": list(keys),
        "incident_ids": sorted(set(incident_ids)),
    }
    body = json.dumps(payload, separators=(",", ":"))
    return _for_team(team_id, routing, key, "digest", None, body, lambda: None)


def _for_team(
    team_id: str,
    routing: RoutingConfig,
    key: str,
    event: str,
    incident_id: str | None,
    body: str,
    cap: Callable[[], bytes | None],
) -> list[Message]:
    try:
        _, team = routing.team(team_id)
    except UnknownTeamError:  # a routing reload removed the team: nothing to send it on
        return []
    out = []
    seen: dict[str, int] = {}
    for channel in team.channels:
        n = seen[channel.type] = seen.get(channel.type, -1) + 1
        name = channel.type if n == 0 else f"{channel.type}.{n}"  # a second webhook: webhook.1
        if isinstance(channel, WebhookTarget):
            xml = cap() if channel.cap else None
            content_type, text = (CAP_XML, xml.decode()) if xml else (JSON, body)
            out.append(
                Message(
                    channel=name,
                    target=channel.url,
                    content_type=content_type,
                    body=text,
                    secret_env=channel.secret_env,
                    key=key,
                    team_id=team_id,
                    event=event,
                    incident_id=incident_id,
                )
            )
        elif isinstance(channel, MqttTarget):
            topic = channel.topic or f"dispatch/{team_id}"
            out.append(
                Message(key, name, topic, JSON, body, team_id, event, incident_id=incident_id)
            )
    return out


_NOTIFYING = {
    TimelineKind.DISPATCHED: "dispatched",
    TimelineKind.ESCALATED: "escalated",
    TimelineKind.CANCELLED: "cancelled",
    TimelineKind.CLOSED: "closed",
}


def notices(before: Incident | None, after: Incident) -> list[Notice]:
    """The notifications a change from `before` to `after` calls for, one per new timeline entry
    that the current team must hear about: dispatch, escalation, a repeat, a severity rise (on
    an incident already sent), cancellation and closing."""
    start = len(before.timeline) if before is not None else 0
    out: list[Notice] = []
    for seq, entry in enumerate(after.timeline[start:], start):
        event = _NOTIFYING.get(entry.kind)
        if entry.kind is TimelineKind.NOTIFIED and entry.actor == SYSTEM:
            event = "repeat"
        if entry.kind is TimelineKind.SEVERITY:
            rose = before is not None and after.severity > before.severity
            event = "severity" if rose and before is not None and before.team_id else None
        if event is not None and after.team_id is not None:
            out.append(Notice(after, event, seq, after.team_id))
    return out


def events(changes: Iterable[tuple[Incident | None, Incident]]) -> tuple[IncidentEvent, ...]:
    """One event per timeline entry added by each (before, after) change."""
    out: list[IncidentEvent] = []
    for before, after in changes:
        start = len(before.timeline) if before is not None else 0
        out += [IncidentEvent(after, entry) for entry in after.timeline[start:]]
    return tuple(out)
