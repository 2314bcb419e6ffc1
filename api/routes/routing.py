"""Routing: which handler and team get which incidents, the escalation policies, reload, and
the teams' MQTT logins (each reads only its own `dispatch/{team}/#`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from alerts.channels.webhook import redacted_url
from alerts.errors import RoutingError, UnknownTeamError
from alerts.sql.team_logins import TeamLogins, dispatch_filter
from api.deps import Caller, ContextDep, alert_service, require
from api.schemas import Problem
from api.schemas_alerts import RoutingProblem, RoutingProblemBody, RoutingPublic, TeamMqttLogin
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
async def get_routing(context: ContextDep, caller: Caller) -> RoutingPublic:
    routing = RoutingPublic.of(alert_service(context).routing)
    return routing if caller.role is Role.admin else _without_webhook_secrets(routing)


@router.post(
    "/reload", summary="Re-read the routing file; an invalid file is refused, the old one stays",
    responses={
        422: {"model": RoutingProblemBody, "description": "the routing file is invalid"},
        **UNAVAILABLE,
    },
)
async def reload_routing(context: ContextDep, caller: Admin) -> RoutingPublic:
    service = alert_service(context)
    if context.reload_routing is None:
        raise HTTPException(503, "routing reload is not available in this process")
    try:
        await context.reload_routing()
    except RoutingError as exc:
        problem = RoutingProblem(source=exc.source, problems=exc.problems)
        raise HTTPException(422, problem.model_dump()) from None
    return RoutingPublic.of(service.routing)


@router.post(
    "/teams/{team_id}/mqtt-login",
    summary="A new MQTT login for a team (replacing its old one); the password is shown once",
    status_code=201,
    responses={404: {"model": Problem, "description": "no such team"}, **UNAVAILABLE},
)
async def issue_team_login(team_id: str, context: ContextDep, caller: Admin) -> TeamMqttLogin:
    routing = alert_service(context).routing
    try:
        issued = await TeamLogins(context.sessions).issue(team_id, routing)
    except UnknownTeamError as exc:
        raise HTTPException(404, f"{exc}; see GET /api/v1/routing for the teams") from None
    if context.on_devices_changed is not None:  # installs the broker's users and ACLs now
        await context.on_devices_changed()
    return TeamMqttLogin(team_id=issued.team_id, username=issued.username,
                         password=issued.password, subscribe=dispatch_filter(issued.team_id))


def _without_webhook_secrets(routing: RoutingPublic) -> RoutingPublic:
    """`routing` (built for this response, so changed in place) with webhook URLs redacted."""
    for handler in routing.handlers:
        for team in handler.teams:
            for channel in team.channels:
                if channel.type == "webhook" and channel.target is not None:
                    channel.target = redacted_url(channel.target)
    return routing
