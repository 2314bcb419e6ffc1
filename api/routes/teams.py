"""Teams of the routing in force: who is on call now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from alerts.errors import UnknownTeamError
from api.deps import AlertServiceDep, CityZoneDep, require
from api.routes.routing import UNAVAILABLE
from api.schemas.oncall import TeamOnCall
from api.schemas.problems import Problem
from api.security.principal import Principal, Role
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/teams", tags=["routing"])
Admin = Annotated[Principal, Depends(require(Role.admin))]


@router.get(
    "/{team_id}/oncall", summary="Who is on duty now for each of a team's on-call schedules",
    responses={404: {"model": Problem, "description": "no such team"}, **UNAVAILABLE},
)
async def team_oncall(
    team_id: str, _caller: Admin, service: AlertServiceDep, tz: CityZoneDep
) -> TeamOnCall:
    try:
        _, team = service.routing.team(team_id)
    except KeyError:
        raise UnknownTeamError(team_id) from None
    return TeamOnCall.of(team, now_ms(), tz)
