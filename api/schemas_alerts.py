"""Request and response models of the alerts, reports and routing endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from alerts.decisions.reports import GroupBy, ReportRow
from alerts.model import Alert, AlertChange
from alerts.routing import MqttTarget, RoutingConfig
from rules.detection import Severity

SeverityName = Literal["info", "blue", "yellow", "orange", "red"]


def severity_name(level: int) -> str:
    return Severity(level).name.lower()


class AlertPublic(BaseModel):
    id: str
    rule_id: str
    subject: str = Field(description="a device id, or grid:<cell> / district:<name>")
    category: str
    severity: str
    state: str = Field(description="pending, firing, acknowledged, cleared or closed")
    started_ms: int
    updated_ms: int
    cleared_ms: int | None = None
    value: float | None = Field(description="the value that triggered it; null if not a number")
    device_id: str | None = None
    metric: str | None = None
    district: str | None = None
    grid: str | None = None
    flapping: bool

    @classmethod
    def of(cls, row: Alert) -> AlertPublic:
        return cls(
            id=row.id, rule_id=row.rule_id, subject=row.subject, category=row.category,
            severity=severity_name(row.severity), state=row.state, started_ms=row.started_ms,
            updated_ms=row.updated_ms, cleared_ms=row.cleared_ms,
            value=row.value if row.value == row.value else None,  # NaN is no JSON number
            device_id=row.device_id, metric=row.metric, district=row.district, grid=row.grid,
            flapping=row.flapping,
        )


class AlertChangePublic(BaseModel):
    """One history entry; from_state == to_state for a severity-only change."""

    ts_ms: int
    from_state: str | None
    to_state: str
    severity: str
    actor: str

    @classmethod
    def of(cls, change: AlertChange) -> AlertChangePublic:
        return cls(
            ts_ms=change.ts_ms, from_state=change.from_state, to_state=change.to_state,
            severity=severity_name(change.severity), actor=change.actor,
        )


class AlertDetail(AlertPublic):
    incident_id: str | None = Field(description="the incident holding the alert, if any")
    history: list[AlertChangePublic] = Field(description="state and severity changes, oldest first")


class AlertPage(BaseModel):
    items: list[AlertPublic]
    total: int = Field(description="alerts matching the filters, over all pages")
    limit: int
    offset: int


class ReportRowPublic(BaseModel):
    key: str = Field(description="the team id, category or severity of this row")
    incidents: int
    acknowledged: int
    resolved: int
    mtta_s: float | None = Field(description="mean time to acknowledge; null if none was")
    mttr_s: float | None = Field(description="mean time to resolve; null if none was")
    sla_breaches: int
    escalations: int

    @classmethod
    def of(cls, row: ReportRow) -> ReportRowPublic:
        return cls(
            key=row.key, incidents=row.incidents, acknowledged=row.acknowledged,
            resolved=row.resolved,
            mtta_s=None if row.mtta_ms is None else row.mtta_ms / 1000,
            mttr_s=None if row.mttr_ms is None else row.mttr_ms / 1000,
            sla_breaches=row.sla_breaches, escalations=row.escalations,
        )


class Report(BaseModel):
    start_ms: int
    end_ms: int
    group_by: GroupBy
    policy_id: str = Field(description="the escalation policy whose deadlines are the SLA")
    rows: list[ReportRowPublic]


class ChannelPublic(BaseModel):
    type: str
    target: str | None = Field(description="webhook URL or MQTT topic (null: dispatch/{team})")
    cap: bool = False


class TeamPublic(BaseModel):
    id: str
    name: str
    channels: list[ChannelPublic]


class HandlerPublic(BaseModel):
    id: str
    name: str
    districts: list[str]
    categories: list[str]
    teams: list[TeamPublic]


class PolicyPublic(BaseModel):
    id: str
    ack_deadline_s: dict[str, int] = Field(description="by severity")
    repeat_s: dict[str, int] = Field(description="by severity")
    levels: list[str] = Field(description="team ids for escalation levels 1, 2, …")


class RouteMatch(BaseModel):
    categories: list[str]
    districts: list[str]
    device_types: list[str]
    min_severity: str


class RoutePublic(BaseModel):
    match: RouteMatch
    handler: str
    team: str
    policy: str


class RoutingPublic(BaseModel):
    """The routing in force: first matching route wins; the last one is the catch-all."""

    handlers: list[HandlerPublic]
    policies: list[PolicyPublic]
    routes: list[RoutePublic]

    @classmethod
    def of(cls, config: RoutingConfig) -> RoutingPublic:
        def by_severity(values: dict[Severity, int]) -> dict[str, int]:
            return {s.name.lower(): v for s, v in sorted(values.items(), reverse=True)}

        return cls(
            handlers=[
                HandlerPublic(
                    id=h.id, name=h.name, districts=list(h.districts),
                    categories=list(h.categories),
                    teams=[
                        TeamPublic(id=t.id, name=t.name, channels=[
                            ChannelPublic(type=c.type, target=c.topic, cap=False)
                            if isinstance(c, MqttTarget)
                            else ChannelPublic(type=c.type, target=c.url, cap=c.cap)
                            for c in t.channels
                        ])
                        for t in h.teams
                    ],
                )
                for h in config.handlers
            ],
            policies=[
                PolicyPublic(
                    id=p.id, ack_deadline_s=by_severity(p.ack_deadline_s),
                    repeat_s=by_severity(p.repeat_s), levels=list(p.levels),
                )
                for p in config.policies
            ],
            routes=[
                RoutePublic(
                    match=RouteMatch(
                        categories=list(r.match.categories), districts=list(r.match.districts),
                        device_types=list(r.match.device_types),
                        min_severity=r.match.min_severity.name.lower(),
                    ),
                    handler=r.handler, team=r.team, policy=r.policy,
                )
                for r in config.routes
            ],
        )


class RoutingProblem(BaseModel):
    source: str
    problems: list[str] = Field(description="each as `location: message`")


class RoutingProblemBody(BaseModel):
    detail: RoutingProblem


class TeamMqttLogin(BaseModel):
    """A team's MQTT login; the password is shown only in this response."""

    team_id: str
    username: str
    password: str
    subscribe: str = Field(description="the topic filter it may read (before any topic prefix)")
