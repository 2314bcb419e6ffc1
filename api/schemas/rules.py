"""Rules: the wire shape of `rules.language.model.Rule`, validation and backtests."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.backtesting import BacktestReport
from api.clock import Instant
from api.query import TIME
from api.schemas.common import RequestBody, epoch_ms_field, iso_twin
from api.schemas.problems import ProblemBase
from devices.names import RuleId
from rules.detection import Category
from rules.errors import RuleRejected
from rules.language.model import Rule
from rules.language.rulefile import build_rule, format_duration

MAX_EXPRESSION = 1000


class MatchSpec(BaseModel):
    """Which series a rule judges; every given field must hold (each a list of alternatives)."""

    model_config = ConfigDict(extra="forbid")

    device_type: list[str] | None = None
    metric: list[str] | None = None
    district: list[str] | None = None
    grid: list[str] | None = None
    device_ids: list[str] | None = None


class RuleSpec(BaseModel):
    """A rule without its id (the body of an update); the same fields as in a rule file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field("", max_length=200)
    category: Category
    match: MatchSpec = MatchSpec()
    when: str = Field(
        max_length=MAX_EXPRESSION, description="condition, e.g. `value > 150` or `rate(5m) > 0.2`"
    )
    for_: str | None = Field(
        None, alias="for", max_length=32,
        description="how long `when` must hold before firing, e.g. 10m",
    )
    clear_when: str | None = Field(
        None, max_length=MAX_EXPRESSION, description="hysteresis: clears only when this holds"
    )
    severity: str = Field(
        "yellow", max_length=MAX_EXPRESSION,
        description="a level or e.g. `red if value >= 50 else orange`",
    )
    description: str = Field("", max_length=4000)
    enabled: bool = True

    def to_rule(self, rule_id: str) -> Rule:
        """The validated rule; raises `RuleRejected` naming the field (and expression column)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return build_rule({"id": rule_id, **data})


class RuleCreate(RuleSpec):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "aq-pm25-school", "name": "PM2.5 near schools", "category": "environment",
        "match": {"device_type": ["air_quality"], "metric": ["pm25"], "district": ["haidian"]},
        "when": "mean(1h) > 75", "for": "10m", "clear_when": "mean(1h) <= 65",
        "severity": "orange if mean(1h) > 150 else yellow",
        "description": "HJ 633-2012 IAQI-100 breakpoint, stricter around schools",
        "enabled": True,
    }]})

    id: RuleId


class RulePublic(RuleCreate):
    spatial_scope: str | None = Field(
        None, description="grid, district or neighbours for a count_in() rule; null per series"
    )

    @classmethod
    def of(cls, rule: Rule) -> RulePublic:
        """Built unvalidated: the rule is valid already (a hand-edited file may exceed the
        request size limits)."""
        m = rule.match
        return cls.model_construct(
            id=rule.id, name=rule.name, category=rule.category, when=rule.when,
            match=MatchSpec(**{k: list(v) for k, v in m.model_dump(exclude_none=True).items()}),
            for_=format_duration(rule.for_ms) if rule.for_ms else None,
            clear_when=rule.clear_when, severity=rule.severity, description=rule.description,
            enabled=rule.enabled, spatial_scope=rule.spatial_scope,
        )


class RuleList(BaseModel):
    items: list[RulePublic]
    total: int


class RuleProblem(BaseModel):
    """Why a rule or rule file was refused; positions are 1-based."""

    reason: str
    rule_id: str | None = None
    field: str | None = Field(None, description="the offending field, e.g. when")
    line: int | None = Field(None, description="line in the submitted rule-file text")
    column: int | None = Field(None, description="column inside the offending expression")

    @classmethod
    def of(cls, exc: RuleRejected) -> RuleProblem:
        return cls(
            reason=exc.reason, rule_id=exc.rule_id, field=exc.field, line=exc.line,
            column=exc.column,
        )


class RuleProblemBody(ProblemBase):
    """A 422 body: the rule's problem, or FastAPI's list of validation errors of the request."""

    detail: RuleProblem | list[dict[str, Any]]


class RuleValidation(BaseModel):
    """Either rule-file text (YAML) or one rule; a rule is checked against the current set."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="a whole rule file (YAML)", max_length=1_000_000)
    rule: RuleCreate | None = None

    @model_validator(mode="after")
    def _one(self) -> RuleValidation:
        if (self.text is None) == (self.rule is None):
            raise ValueError("give exactly one of text and rule")
        return self


class ValidationResult(BaseModel):
    valid: bool
    rule_ids: list[str] = Field(description="ids of the rules that would be in force")
    problem: RuleProblem | None = None


class BacktestRequest(RequestBody):
    """Rules to try (stored ones by id, and/or one inline rule) over a past time range."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "rule_ids": ["aq-pm25"], "since": "2026-11-20T00:00:00Z",
        "until": "2026-11-21T00:00:00+08:00",
    }]})

    rule_ids: list[str] = Field(default_factory=list, max_length=500)
    rule: RuleCreate | None = Field(None, description="an inline rule, e.g. one being drafted")
    since: Instant | None = Field(None, description=f"{TIME}; required (or its alias start)")
    until: Instant | None = Field(None, description=f"{TIME}; after since; required")
    start: Instant | None = Field(
        None, description="deprecated: use since", json_schema_extra={"deprecated": True})
    end: Instant | None = Field(
        None, description="deprecated: use until", json_schema_extra={"deprecated": True})

    @model_validator(mode="after")
    def _something(self) -> BacktestRequest:
        if not self.rule_ids and self.rule is None:
            raise ValueError("give rule_ids, an inline rule, or both")
        return self

    def time_range(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """``((name, ms), (name, ms))`` of the range's start and end, each named as given."""
        found = []
        for new, old in (("since", "start"), ("until", "end")):
            given = [(n, v) for n, v in ((new, getattr(self, new)), (old, getattr(self, old)))
                     if v is not None]
            if len(given) != 1:
                need = f"give {new} or its deprecated alias {old}"
                raise RuleRejected(need if not given else f"{need}, not both", field=new)
            found.append(given[0])
        return found[0], found[1]


class BacktestEvent(BaseModel):
    ts_ms: int = epoch_ms_field("at")
    at: ClassVar[str] = iso_twin("ts_ms")
    subject: str = Field(description="a device id, or grid:<cell> / district:<name>")
    severity: str
    value: float | None = Field(description="the reading; null where there is no single one")
    device_id: str | None = None
    metric: str | None = None


class RuleBacktestPublic(BaseModel):
    rule_id: str
    name: str
    raised_total: int = Field(description="firing events, escalations included")
    raised: list[BacktestEvent] = Field(description="oldest first, at most max_events")
    cleared: list[BacktestEvent] = Field(description="oldest first, at most max_events")


class BacktestResult(BaseModel):
    start_ms: int = epoch_ms_field("since")
    end_ms: int = epoch_ms_field("until")
    since: ClassVar[str] = iso_twin("start_ms")
    until: ClassVar[str] = iso_twin("end_ms")
    readings: int = Field(description="stored readings replayed")
    series: int = Field(description="series the rules match")
    max_events: int
    rules: list[RuleBacktestPublic]

    @classmethod
    def of(cls, report: BacktestReport, max_events: int) -> BacktestResult:
        def events(found: list[Any]) -> list[BacktestEvent]:
            return [BacktestEvent.model_validate(e, from_attributes=True)
                    for e in found[:max_events]]

        return cls(
            start_ms=report.start_ms, end_ms=report.end_ms, readings=report.readings,
            series=report.series, max_events=max_events,
            rules=[
                RuleBacktestPublic(
                    rule_id=r.rule_id, name=r.name, raised_total=len(r.raised),
                    raised=events(r.raised), cleared=events(r.cleared),
                )
                for r in report.rules
            ],
        )
