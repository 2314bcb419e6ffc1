"""Incidents: what responders are sent to, its timeline, and the changes callers ask for."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from alerts.model import Incident, IncidentState, TimelineEntry
from api.schemas.common import SeverityName, StrictRequestBody, severity_name
from rules.detection import Category

Text = Field(default="", max_length=2000)


class TimelineEntryPublic(BaseModel):
    ts_ms: int = Field(description="epoch milliseconds")
    actor: str = Field(description="who did it: a user, 'system' or 'dispatcher'")
    kind: str = Field(
        description="a state, or opened/alert_added/note/notified/escalated/paged/..."
    )
    detail: str

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineEntryPublic:
        return cls(ts_ms=entry.ts_ms, actor=entry.actor, kind=entry.kind.value,
                   detail=entry.detail)  # fmt: skip


class IncidentPublic(BaseModel):
    id: str
    title: str
    category: Category
    severity: SeverityName = Field(description="the highest severity of its alerts")
    state: IncidentState
    handler_id: str | None
    team_id: str | None
    escalation_level: int
    opened_ms: int
    updated_ms: int
    acknowledged_ms: int | None
    resolved_ms: int | None
    closed_ms: int | None
    districts: list[str]
    grids: list[str]
    devices: list[str]
    alert_ids: list[str]
    open_alert_ids: list[str]

    @classmethod
    def of(cls, i: Incident) -> IncidentPublic:
        return cls(
            id=i.id,
            title=i.title,
            category=i.category,
            severity=severity_name(i.severity),
            state=i.state,
            handler_id=i.handler_id,
            team_id=i.team_id,
            escalation_level=i.escalation_level,
            opened_ms=i.opened_ms,
            updated_ms=i.updated_ms,
            acknowledged_ms=i.acknowledged_ms,
            resolved_ms=i.resolved_ms,
            closed_ms=i.closed_ms,
            districts=list(i.districts),
            grids=list(i.grids),
            devices=list(i.devices),
            alert_ids=list(i.alert_ids),
            open_alert_ids=list(i.open_alert_ids),
        )


class IncidentDetail(IncidentPublic):
    timeline: list[TimelineEntryPublic]

    @classmethod
    def of(cls, i: Incident) -> IncidentDetail:
        timeline = [TimelineEntryPublic.of(e) for e in i.timeline]
        return cls(**IncidentPublic.of(i).model_dump(), timeline=timeline)


class IncidentPage(BaseModel):
    items: list[IncidentPublic]
    total: int = Field(description="incidents matching the filters, over all pages")
    limit: int
    offset: int


class TransitionRequest(StrictRequestBody):
    to: Literal["en_route", "on_scene", "resolved", "closed", "cancelled"]
    detail: str = Field(
        default="", max_length=2000, description="note or reason for the timeline; "
        "required when cancelling (why it was a false alarm)",
    )


class ReassignRequest(StrictRequestBody):
    team_id: str = Field(min_length=1, max_length=64, description="a team of the routing file")
    reason: str = Text


class NoteRequest(StrictRequestBody):
    text: str = Field(min_length=1, max_length=2000)
