"""Request and response models of the incident, silence and live-event endpoints."""

from __future__ import annotations

from datetime import time
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from alerts.decisions.silences import Field as MatchField
from alerts.decisions.silences import Silence
from alerts.model import Incident, IncidentState, TimelineEntry
from api.schemas import RequestBody
from rules.detection import Category, Severity

SeverityName = Literal["info", "blue", "yellow", "orange", "red"]
Text = Field(default="", max_length=2000)


def severity_name(severity: Severity) -> SeverityName:
    name: SeverityName = severity.name.lower()  # type: ignore[assignment]
    return name


class Invalid(BaseModel):
    """A 422 body: one message, or the list of validation errors of the request."""

    detail: str | list[dict[str, Any]]


class _Request(RequestBody):
    model_config = ConfigDict(extra="forbid")


class TimelineEntryPublic(BaseModel):
    ts_ms: int = Field(description="epoch milliseconds")
    actor: str = Field(description="who did it: a user, 'system' or 'dispatcher'")
    kind: str = Field(description="a state, or opened/alert_added/note/notified/escalated/...")
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


class TransitionRequest(_Request):
    to: Literal["en_route", "on_scene", "resolved", "closed", "cancelled"]
    detail: str = Field(
        default="", max_length=2000, description="note or reason for the timeline; "
        "required when cancelling (why it was a false alarm)",
    )


class ReassignRequest(_Request):
    team_id: str = Field(min_length=1, max_length=64, description="a team of the routing file")
    reason: str = Text


class NoteRequest(_Request):
    text: str = Field(min_length=1, max_length=2000)


class MatcherModel(_Request):
    field: MatchField = Field(description="what the silence matches on")
    value: str = Field(min_length=1, max_length=128)


class WeeklyModel(_Request):
    """Recurring window, in wall-clock time of `tz`; `end` <= `start` runs past midnight."""

    weekdays: list[int] = Field(min_length=1, max_length=7, description="Monday = 0")
    start: time
    end: time
    tz: str = Field(min_length=1, max_length=64, description="IANA time zone, e.g. Asia/Shanghai")

    @field_validator("start", "end")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a wall-clock time without offset; the zone is 'tz'")
        return value


class SilenceCreate(_Request):
    matchers: list[MatcherModel] = Field(min_length=1, max_length=10)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(
        default=None, description="required for a one-off silence; null = until expired"
    )
    reason: str = Field(min_length=1, max_length=2000)
    weekly: WeeklyModel | None = None


class SilencePublic(BaseModel):
    id: str
    matchers: list[MatcherModel]
    starts_ms: int
    ends_ms: int | None
    author: str
    reason: str
    weekly: WeeklyModel | None

    @classmethod
    def of(cls, s: Silence) -> SilencePublic:
        weekly = None
        if s.weekly is not None:
            w = s.weekly
            weekly = WeeklyModel(weekdays=sorted(w.weekdays), start=w.start, end=w.end, tz=w.tz)
        return cls(
            id=s.id,
            matchers=[MatcherModel(field=m.field, value=m.value) for m in s.matchers],
            starts_ms=s.starts_ms,
            ends_ms=s.ends_ms,
            author=s.author,
            reason=s.reason,
            weekly=weekly,
        )
