"""The live stream's events, as documented in OpenAPI (the stream sends plain JSON objects).

Every stored event carries ``id``: an integer that grows with each event and is never reused, so
a client that reconnects with the last id it saw (``?since=``, or ``Last-Event-ID`` on SSE) gets
what it missed. Two control events carry no id: ``gap`` (what was missed is no longer kept) and,
on SSE only, ``closed`` (the server ends the stream and says why).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from alerts.model import IncidentState
from api.schemas.common import SeverityName

EventId = Field(description="the event's position in the stream; resume after it with since=")
TsMs = Field(description="epoch milliseconds of the change")


class AlertEvent(BaseModel):
    """An alert changed state (raised, escalated, acknowledged, cleared, closed...)."""

    id: int = EventId
    type: Literal["alert"]
    kind: str = Field(description="the transition: pending, firing, severity, cleared, ...")
    alert_id: str
    rule_id: str
    subject: str
    state: str
    ts_ms: int = TsMs
    severity: SeverityName
    suppressed_by: str | None = Field(description="flapping, silence:<id> or inhibit:<alert>")


class IncidentEvent(BaseModel):
    """An entry on an incident's timeline; responders get only their teams' incidents."""

    id: int = EventId
    type: Literal["incident"]
    kind: str = Field(
        description="a state, or opened/alert_added/note/notified/escalated/paged/..."
    )
    incident_id: str
    state: IncidentState
    severity: SeverityName
    team_id: str | None
    actor: str
    detail: str
    ts_ms: int = TsMs


class DispatchEvent(BaseModel):
    """The outcome of one attempt to deliver a notification to a team."""

    id: int = EventId
    type: Literal["dispatch"]
    outcome: str = Field(description="delivered, published, retrying or failed")
    key: str = Field(description="the notification's idempotency key")
    channel: str
    team_id: str
    incident_id: str | None
    ts_ms: int = TsMs


class GapEvent(BaseModel):
    """Sent first when events after ``since`` can no longer be replayed: they were pruned from
    the backlog, or ``since`` is ahead of the stream (the store was replaced). Reload the state
    from the REST API; the events that follow start at ``oldest`` (or at the next new one)."""

    type: Literal["gap"]
    since: int = Field(description="the id the client asked to resume after")
    oldest: int | None = Field(description="the oldest id still kept; null when none is")


class ClosedEvent(BaseModel):
    """SSE only: the server ends the stream; reconnect with a fresh token if it expired."""

    type: Literal["closed"]
    reason: str = Field(description="'token expired' or 'access revoked'")


LiveEvent = Annotated[
    AlertEvent | IncidentEvent | DispatchEvent | GapEvent | ClosedEvent,
    Field(discriminator="type"),
]
