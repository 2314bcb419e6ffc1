"""The live stream's events, as documented in OpenAPI (the stream sends plain JSON objects,
the same over SSE and the WebSocket; docs/live-events.md). The models forbid keys they do not
name, so the schema lists every key an event carries.

Every stored event carries ``id``: an integer that grows with each event and is never reused, so
a client that reconnects with the last id it saw (``?since=``, or ``Last-Event-ID`` on SSE) gets
what it missed. Two control events carry no id: ``gap`` (what was missed is no longer kept) and,
on SSE only, ``closed`` (the server ends the stream and says why).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.channels.live import Event
from alerts.model import AlertState, IncidentState, TimelineKind, TransitionKind
from api.clock import EXAMPLE, iso_time
from api.schemas.common import SeverityName
from rules.detection import Category

EventId = Field(description="the event's position in the stream; resume after it with since=")
TsMs = Field(description="epoch milliseconds of the change (deprecated: read at)",
             json_schema_extra={"deprecated": True})
At = Field(description="when it changed: RFC 3339 in UTC", examples=[EXAMPLE],
           json_schema_extra={"format": "date-time"})


def on_the_wire(event: Event) -> Event:
    """`event` as the stream sends it: with ``at``, its ``ts_ms`` in RFC 3339."""
    return event if "ts_ms" not in event else {**event, "at": iso_time(event["ts_ms"])}


def _example(**event: Any) -> ConfigDict:
    """Models that refuse unnamed keys, with `event` as their example (no nulls: the OpenAPI
    document leaves them out)."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [event]})


class AlertEvent(BaseModel):
    """An alert changed state (raised, escalated, acknowledged, cleared, closed...)."""

    model_config = _example(
        id=4711, type="alert", kind="firing", alert_id="al-3f2a9c1e5b7d4a60", rule_id="aq-pm25",
        subject="aq-0001", state="firing", ts_ms=1795420800000, at=EXAMPLE, severity="orange",
        category="environment", suppressed_by="silence:sil-0042",
    )

    id: int = EventId
    type: Literal["alert"]
    kind: TransitionKind = Field(description="the transition")
    alert_id: str
    rule_id: str
    subject: str = Field(description="a device id, or grid:<cell> / district:<name>")
    state: AlertState
    ts_ms: int = TsMs
    at: str = At
    severity: SeverityName
    category: Category
    suppressed_by: str | None = Field(description="flapping, silence:<id> or inhibit:<alert>")


class IncidentEvent(BaseModel):
    """An entry on an incident's timeline; responders get only their teams' incidents."""

    model_config = _example(
        id=4712, type="incident", kind="opened", incident_id="in-8c1d2e3f4a5b6c7d", state="new",
        severity="orange", team_id="environment-bureau", actor="system",
        detail="aq-pm25 on aq-0001", ts_ms=1795420800000, at=EXAMPLE,
    )

    id: int = EventId
    type: Literal["incident"]
    kind: TimelineKind = Field(description="the timeline entry: a new state, or what happened")
    incident_id: str
    state: IncidentState
    severity: SeverityName
    team_id: str | None
    actor: str
    detail: str
    ts_ms: int = TsMs
    at: str = At


class DispatchEvent(BaseModel):
    """The outcome of one attempt to deliver a notification to a team."""

    model_config = _example(
        id=4713, type="dispatch", outcome="delivered", key="in-8c1d2e3f4a5b6c7d:opened:0",
        channel="webhook", team_id="environment-bureau", incident_id="in-8c1d2e3f4a5b6c7d",
        ts_ms=1795420800000, at=EXAMPLE,
    )

    id: int = EventId
    type: Literal["dispatch"]
    outcome: str = Field(description="delivered, published, retrying or failed")
    key: str = Field(description="the notification's idempotency key")
    channel: str
    team_id: str
    incident_id: str | None
    ts_ms: int = TsMs
    at: str = At


class GapEvent(BaseModel):
    """Sent first when events after ``since`` can no longer be replayed: they were pruned from
    the backlog, or ``since`` is ahead of the stream (the store was replaced). Reload the state
    from the REST API; the events that follow start at ``oldest`` (or at the next new one)."""

    model_config = _example(type="gap", since=4000, oldest=4500)

    type: Literal["gap"]
    since: int = Field(description="the id the client asked to resume after")
    oldest: int | None = Field(description="the oldest id still kept; null when none is")


class ClosedEvent(BaseModel):
    """SSE only: the server ends the stream; reconnect with a fresh token if it expired."""

    model_config = _example(type="closed", reason="token expired")

    type: Literal["closed"]
    reason: str = Field(description="'token expired' or 'access revoked'")


LiveEvent = Annotated[
    AlertEvent | IncidentEvent | DispatchEvent | GapEvent | ClosedEvent,
    Field(discriminator="type"),
]
