"""Teams of the routing file: read them, put or remove one, add or remove on-call overrides,
and who is on call now.

Writes go through `alerts.routing_edit.RoutingFile` (as `urbanwatch teams` does): the whole
new routing is validated, written in place keeping the file's comments, and put in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from alerts.routing import RoutingConfig
from alerts.routing_edit import RoutingFile
from alerts.sql.team_logins import TeamLogins
from api.deps import (
    AlertServiceDep,
    AlertsPartDep,
    Caller,
    CityZoneDep,
    ContextDep,
    SessionsDep,
    require,
)
from api.routes.routing import UNAVAILABLE, redact_webhooks
from api.schemas.oncall import TeamOnCall
from api.schemas.problems import Problem
from api.schemas.teams import Cover, SchedulePublic, TeamDetail, TeamProblem, TeamPut
from api.security.principal import Principal, Role
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/teams", tags=["routing"])
Admin = Annotated[Principal, Depends(require(Role.admin))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such team (or schedule, override)"}
}
WRITE: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "refused: the shipped routing is read-only (set "
          "[alerts] routing_path), the team is still referenced, or the file is invalid now"},
    422: {"model": TeamProblem, "description": "the routing would be invalid: every "
          "problem with its line, column and field path; or an invalid request"},
    **UNAVAILABLE,
}
SECRETS = ("Webhook URLs are whole for admins only (others get scheme and host, as "
           "GET /api/v1/routing does); members' e-mail and phone for admins only.")


@router.get("", summary="Every team of the routing in force", description=SECRETS,
            responses=UNAVAILABLE)
async def list_teams(caller: Caller, service: AlertServiceDep, tz: CityZoneDep) -> list[TeamDetail]:
    return [_shown(caller, TeamDetail.of(h, t, tz))
            for h in service.routing.handlers for t in h.teams]


@router.get("/{team_id}", summary="One team with its members and on-call schedules",
            description=SECRETS, responses={**NOT_FOUND, **UNAVAILABLE})
async def get_team(
    team_id: str, caller: Caller, service: AlertServiceDep, tz: CityZoneDep
) -> TeamDetail:
    return _shown(caller, _detail(service.routing, team_id, tz))


@router.put(
    "/{team_id}", summary="Create or replace a team under a handler, in the routing file",
    responses={**NOT_FOUND, **WRITE},
)
async def put_team(
    team_id: str, body: TeamPut, _caller: Admin, alerts: AlertsPartDep, tz: CityZoneDep
) -> TeamDetail:
    routing = await _write(alerts, lambda f: f.put_team(body.handler, body.team_data(team_id)))
    return _detail(routing, team_id, tz)


@router.delete(
    "/{team_id}", summary="Remove a team no route, escalation level or policy step names; "
    "its MQTT login goes with it",
    status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **WRITE},
)
async def delete_team(team_id: str, _caller: Admin, alerts: AlertsPartDep,
                      sessions: SessionsDep, context: ContextDep) -> Response:
    await _write(alerts, lambda f: f.remove_team(team_id))
    if await TeamLogins(sessions).revoke(team_id) and context.on_devices_changed is not None:
        await context.on_devices_changed()  # the broker drops the login now
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{team_id}/oncall/{schedule_id}/overrides",
    summary="A member covers an on-call schedule from start until end",
    status_code=status.HTTP_201_CREATED, responses={**NOT_FOUND, **WRITE},
)
async def add_override(
    team_id: str, schedule_id: str, body: Cover, _caller: Admin, alerts: AlertsPartDep,
    tz: CityZoneDep,
) -> SchedulePublic:
    routing = await _write(alerts, lambda f: f.cover(
        team_id, schedule_id, body.member, body.start, body.end, tz))
    return _schedule(routing, team_id, schedule_id, tz)


@router.delete(
    "/{team_id}/oncall/{schedule_id}/overrides/{index}",
    summary="Remove one override of a schedule (its index as GET shows it)",
    status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **WRITE},
)
async def delete_override(
    team_id: str, schedule_id: str, index: int, _caller: Admin, alerts: AlertsPartDep
) -> Response:
    await _write(alerts, lambda f: f.uncover(team_id, schedule_id, index))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{team_id}/oncall", summary="Who is on duty now for each of a team's on-call schedules",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
async def team_oncall(
    team_id: str, _caller: Admin, service: AlertServiceDep, tz: CityZoneDep
) -> TeamOnCall:
    _, team = service.routing.team(team_id)
    return TeamOnCall.of(team, now_ms(), tz)


async def _write(
    alerts: AlertsPartDep, change: Callable[[RoutingFile], RoutingConfig]
) -> RoutingConfig:
    """Make `change` to the routing file off the event loop, then put the file in force."""
    await asyncio.to_thread(change, RoutingFile(alerts.routing_path))
    await alerts.reload_routing()
    return alerts.service.routing


def _detail(routing: RoutingConfig, team_id: str, tz: str) -> TeamDetail:
    return TeamDetail.of(*routing.team(team_id), tz)


def _schedule(routing: RoutingConfig, team_id: str, schedule_id: str, tz: str) -> SchedulePublic:
    _, team = routing.team(team_id)
    schedule = team.schedule(schedule_id)
    assert schedule is not None, "the edit just wrote it"
    return SchedulePublic.of(schedule, tz)


def _shown(caller: Principal, team: TeamDetail) -> TeamDetail:
    """`team` (built for this response) as `caller` may see it."""
    if caller.role is not Role.admin:
        redact_webhooks(team.channels)
        for member in team.members:
            member.email = member.phone = None
    return team
