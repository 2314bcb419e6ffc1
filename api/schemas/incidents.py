"""Incidents: what responders are sent to, its timeline, and the changes callers ask for."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.model import Incident, IncidentState, TimelineEntry
from api.cursor import NextCursor
from api.schemas.common import (
    SeverityName,
    StrictRequestBody,
    epoch_ms_field,
    iso_twin,
    severity_name,
)
from rules.detection import Category

Text = Field(default="", max_length=2000)


class TimelineEntryPublic(BaseModel):
    ts_ms: int = epoch_ms_field("at")
    at: ClassVar[str] = iso_twin("ts_ms")
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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "in-8c1d2e3f4a5b6c7d", "title": "Gas leak in dongcheng", "category": "safety",
        "severity": "red", "state": "closed", "handler_id": "gas-emergency",
        "team_id": "gas-emergency", "escalation_level": 0, "opened_ms": 1795420800000,
        "updated_ms": 1795424400000, "acknowledged_ms": 1795421100000,
        "resolved_ms": 1795423500000, "closed_ms": 1795424400000,
        "opened_at": "2026-11-23T08:00:00.000Z", "updated_at": "2026-11-23T09:00:00.000Z",
        "acknowledged_at": "2026-11-23T08:05:00.000Z", "resolved_at": "2026-11-23T08:45:00.000Z",
        "closed_at": "2026-11-23T09:00:00.000Z", "districts": ["dongcheng"], "grids": ["g-1-1"],
        "devices": ["gas-0001"], "alert_ids": ["al-3f2a9c1e5b7d4a60"], "open_alert_ids": [],
    }]})

    id: str
    title: str
    category: Category
    severity: SeverityName = Field(description="the highest severity of its alerts")
    state: IncidentState
    handler_id: str | None
    team_id: str | None
    escalation_level: int
    opened_ms: int = epoch_ms_field("opened_at")
    updated_ms: int = epoch_ms_field("updated_at")
    acknowledged_ms: int | None = epoch_ms_field("acknowledged_at")
    resolved_ms: int | None = epoch_ms_field("resolved_at")
    closed_ms: int | None = epoch_ms_field("closed_at")
    opened_at: ClassVar[str] = iso_twin("opened_ms")
    updated_at: ClassVar[str] = iso_twin("updated_ms")
    acknowledged_at: ClassVar[str | None] = iso_twin("acknowledged_ms", optional=True)
    resolved_at: ClassVar[str | None] = iso_twin("resolved_ms", optional=True)
    closed_at: ClassVar[str | None] = iso_twin("closed_ms", optional=True)
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
    next_cursor: str | None = NextCursor


class TransitionRequest(StrictRequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"to": "on_scene", "detail": "crew at the valve"},
        {"to": "cancelled", "detail": "sensor cleaned; no leak"},
    ]})

    to: Literal["en_route", "on_scene", "resolved", "closed", "cancelled"]
    detail: str = Field(
        default="", max_length=2000, description="note or reason for the timeline; "
        "required when cancelling (why it was a false alarm)",
    )


class ReassignRequest(StrictRequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"team_id": "flood-control", "reason": "water over the road, not just the drain"},
    ]})

    team_id: str = Field(min_length=1, max_length=64, description="a team of the routing file")
    reason: str = Text


class NoteRequest(StrictRequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "road closed at km 3"}]})

    text: str = Field(min_length=1, max_length=2000)
