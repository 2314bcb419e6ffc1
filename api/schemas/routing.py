"""Routing: handlers, teams, escalation policies and routes, as in force."""

from __future__ import annotations

from pydantic import BaseModel, Field

from alerts.routing import ChannelTarget, MqttTarget, RoutingConfig
from api.schemas.problems import Problem
from rules.detection import Severity


class ChannelPublic(BaseModel):
    type: str
    target: str | None = Field(description="webhook URL or MQTT topic (null: dispatch/{team})")
    cap: bool = False

    @classmethod
    def of(cls, channel: ChannelTarget) -> ChannelPublic:
        if isinstance(channel, MqttTarget):
            return cls(type=channel.type, target=channel.topic, cap=False)
        return cls(type=channel.type, target=channel.url, cap=channel.cap)


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


class PagePublic(BaseModel):
    channel: str = Field(description="email, or the id of an SMS/voice gateway")
    to: str = Field(description="an on-call schedule: lead (the team's own) or team/schedule")


class StepPublic(BaseModel):
    after_s: int = Field(description="seconds after the dispatch, while unacknowledged")
    notify: list[PagePublic]


class PolicyPublic(BaseModel):
    id: str
    ack_deadline_s: dict[str, int] = Field(description="by severity")
    repeat_s: dict[str, int] = Field(description="by severity")
    levels: list[str] = Field(description="team ids for escalation levels 1, 2, …")
    steps: list[StepPublic] = Field(description="who is paged when (see GET /teams/{id}/oncall)")


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
                        TeamPublic(id=t.id, name=t.name,
                                   channels=[ChannelPublic.of(c) for c in t.channels])
                        for t in h.teams
                    ],
                )
                for h in config.handlers
            ],
            policies=[
                PolicyPublic(
                    id=p.id, ack_deadline_s=by_severity(p.ack_deadline_s),
                    repeat_s=by_severity(p.repeat_s), levels=list(p.levels),
                    steps=[StepPublic(after_s=st.after_s, notify=[
                        PagePublic(channel=n.channel, to=n.to) for n in st.notify])
                        for st in p.steps],
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


class RoutingProblem(Problem):
    """Invalid routing: a routing file, or a team that is not in it."""

    source: str = Field(description="the routing file")
    problems: list[str] = Field(description="each as `location: message`")


class TeamMqttLogin(BaseModel):
    """A team's MQTT login; the password is shown only in this response."""

    team_id: str
    username: str
    password: str
    subscribe: str = Field(description="the topic filter it may read (before any topic prefix)")
