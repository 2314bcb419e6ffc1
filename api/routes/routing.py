"""Routing: which handler and team get which incidents, and the escalation policies; reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from alerts.channels.webhook import redacted_url
from api.deps import AlertServiceDep, AlertsPartDep, Caller, require
from api.schemas.problems import Problem
from api.schemas.routing import RoutingProblem, RoutingPublic
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


def _without_webhook_secrets(routing: RoutingPublic) -> RoutingPublic:
    """`routing` (built for this response, so changed in place) with webhook URLs redacted."""
    for handler in routing.handlers:
        for team in handler.teams:
            for channel in team.channels:
                if channel.type == "webhook" and channel.target is not None:
                    channel.target = redacted_url(channel.target)
    return routing
