"""Routing: which handler and team get which incidents, and the escalation policies; reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from alerts.channels.webhook import redacted_url
from alerts.errors import RoutingError
from api.deps import Caller, ContextDep, alert_service, require
from api.schemas import Problem
from api.schemas_alerts import RoutingProblem, RoutingProblemBody, RoutingPublic
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


def _without_webhook_secrets(routing: RoutingPublic) -> RoutingPublic:
    """`routing` (built for this response, so changed in place) with webhook URLs redacted."""
    for handler in routing.handlers:
        for team in handler.teams:
            for channel in team.channels:
                if channel.type == "webhook" and channel.target is not None:
                    channel.target = redacted_url(channel.target)
    return routing
