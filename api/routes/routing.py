"""Routing: which handler and team get which incidents, the escalation policies, reload, and
the teams' MQTT logins (each reads only its own `dispatch/{team}/#`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from alerts.channels.webhook import redacted_url
from alerts.sql.team_logins import TeamLogins, dispatch_filter
from api.deps import AlertServiceDep, AlertsPartDep, Caller, ContextDep, SessionsDep, require
from api.schemas.problems import Problem
from api.schemas.routing import ChannelPublic, RoutingProblem, RoutingPublic, TeamMqttLogin
from api.security.principal import Principal, Role

router = APIRouter(prefix="/api/v1/routing", tags=["routing"])
Admin = Annotated[Principal, Depends(require(Role.admin))]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "the alerts service is not running here"}
}


@router.get(
    "", summary="The routing in force: handlers, teams, policies, routes",
    description="Webhook URLs may carry secrets (in the path, query or user info), so only "
    "admins see them whole; every other role gets a webhook's scheme and host followed by "
    "`/…`, e.g. `https://hooks.example.org/…` (just `…` when the host cannot be told apart). "
    "MQTT topics are shown to all.",
    responses=UNAVAILABLE,
)
async def get_routing(caller: Caller, service: AlertServiceDep) -> RoutingPublic:
    routing = RoutingPublic.of(service.routing)
    return routing if caller.role is Role.admin else _without_webhook_secrets(routing)


@router.post(
    "/reload", summary="Re-read the routing file; an invalid file is refused, the old one stays",
    responses={
        422: {"model": RoutingProblem, "description": "the routing file is invalid"},
        **UNAVAILABLE,
    },
)
async def reload_routing(caller: Admin, alerts: AlertsPartDep) -> RoutingPublic:
    await alerts.reload_routing()
    return RoutingPublic.of(alerts.service.routing)


@router.post(
    "/teams/{team_id}/mqtt-login",
    summary="A new MQTT login for a team (replacing its old one); the password is shown once",
    status_code=201,
    responses={404: {"model": Problem, "description": "no such team"}, **UNAVAILABLE},
)
async def issue_team_login(
    team_id: str, caller: Admin, service: AlertServiceDep, sessions: SessionsDep,
    context: ContextDep,
) -> TeamMqttLogin:
    issued = await TeamLogins(sessions).issue(team_id, service.routing)
    if context.on_devices_changed is not None:  # installs the broker's users and ACLs now
        await context.on_devices_changed()
    return TeamMqttLogin(team_id=issued.team_id, username=issued.username,
                         password=issued.password, subscribe=dispatch_filter(issued.team_id))


def _without_webhook_secrets(routing: RoutingPublic) -> RoutingPublic:
    """`routing` (built for this response, so changed in place) with webhook URLs redacted."""
    for handler in routing.handlers:
        for team in handler.teams:
            redact_webhooks(team.channels)
    return routing


def redact_webhooks(channels: list[ChannelPublic]) -> None:
    """Webhook URLs (which may carry secrets) cut to scheme and host, in place."""
    for channel in channels:
        if channel.type == "webhook" and channel.target is not None:
            channel.target = redacted_url(channel.target)
