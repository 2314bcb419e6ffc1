"""Silences: maintenance windows, one-off or weekly, matched as Alertmanager's silences are."""

from __future__ import annotations

from datetime import time
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.decisions.silences import MAX_PATTERN, Op, Silence
from alerts.decisions.silences import Field as MatchField
from api.clock import Instant
from api.schemas.common import StrictRequestBody, epoch_ms_field, iso_twin
from devices.names import Kind, check
from rules.detection import Severity

NAMED = {MatchField.DEVICE: Kind.DEVICE, MatchField.GRID: Kind.GRID,
         MatchField.DISTRICT: Kind.DISTRICT, MatchField.RULE: Kind.RULE}


class MatcherModel(StrictRequestBody):
    """One condition, as in Alertmanager: `field op value`.

    `=` and `!=` compare the whole value; `=~` and `!~` take a regular expression (Python `re`
    syntax) that must match the whole value. A field the alert lacks reads as "".
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"field": "district", "value": "dongcheng"},
                {"field": "severity", "op": "=~", "value": "blue|yellow"},
                {"field": "device_type", "op": "!=", "value": "gas"},
            ]
        }
    )

    field: MatchField = Field(description="what the silence matches on")
    op: Op = Field(default=Op.EQUAL, description="=, !=, =~ (regex), !~ (negated regex)")
    value: str = Field(
        min_length=1, max_length=MAX_PATTERN,
        description="an id, a device type, a category or a severity; a pattern for =~ and !~",
    )  # fmt: skip

    @model_validator(mode="after")
    def _named(self) -> MatcherModel:
        if self.op in (Op.REGEX, Op.NOT_REGEX):
            return self  # the pattern is checked when the matcher is built
        kind = NAMED.get(self.field)
        if kind is not None:
            check(kind, self.value)
        if self.field is MatchField.SEVERITY:
            Severity.parse(self.value)
        return self


class WeeklyModel(StrictRequestBody):
    """Recurring window, in wall-clock time of `tz` (the city's zone when not given); `end` <=
    `start` runs past midnight."""

    weekdays: list[int] = Field(min_length=1, max_length=7, description="Monday = 0")
    start: time
    end: time
    tz: str | None = Field(
        None, min_length=1, max_length=64,
        description="IANA time zone, e.g. Asia/Shanghai; default: the city's ([city] timezone)",
    )

    @field_validator("start", "end")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a wall-clock time without offset; the zone is 'tz'")
        return value


class SilenceCreate(StrictRequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"matchers": [{"field": "device", "value": "wl-0042"}],
         "starts_at": "2026-11-23T09:00:00+08:00", "ends_at": "2026-11-23T12:00:00+08:00",
         "reason": "gauge cleaning"},
        {"matchers": [{"field": "district", "value": "chaoyang"},
                      {"field": "category", "value": "traffic"}],
         "starts_at": "2026-11-23T00:00:00Z", "reason": "night road works",
         "weekly": {"weekdays": [6], "start": "02:00", "end": "04:00", "tz": "Asia/Shanghai"}},
    ]})

    matchers: list[MatcherModel] = Field(min_length=1, max_length=10)
    starts_at: Instant
    ends_at: Instant | None = Field(
        default=None, description="required for a one-off silence; null = until expired"
    )
    reason: str = Field(min_length=1, max_length=2000)
    weekly: WeeklyModel | None = None


class SilencePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "sil-0042", "matchers": [{"field": "district", "op": "=", "value": "chaoyang"}],
        "starts_ms": 1795392000000, "ends_ms": 1803168000000,
        "starts_at": "2026-11-23T00:00:00.000Z", "ends_at": "2027-02-21T00:00:00.000Z",
        "reason": "night road works", "author": "olga",
        "weekly": {"weekdays": [6], "start": "02:00:00", "end": "04:00:00", "tz": "Asia/Shanghai"},
    }]})

    id: str
    matchers: list[MatcherModel]
    starts_ms: int = epoch_ms_field("starts_at")
    ends_ms: int | None = epoch_ms_field("ends_at")
    starts_at: ClassVar[str] = iso_twin("starts_ms")
    ends_at: ClassVar[str | None] = iso_twin("ends_ms", optional=True)
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
            # as stored: a silence made before the id grammar still lists
            matchers=[MatcherModel.model_construct(field=m.field, op=m.op, value=m.value)
                      for m in s.matchers],
            starts_ms=s.starts_ms,
            ends_ms=s.ends_ms,
            author=s.author,
            reason=s.reason,
            weekly=weekly,
        )
