"""Reports: MTTA, MTTR, SLA breaches and escalations per team, category or severity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from alerts.decisions.reports import GroupBy
from api.clock import Instant
from api.deps import AlertServiceDep, BoundsDep, require
from api.query import TIME, alias_of, time_range
from api.schemas.problems import Invalid, Problem
from api.schemas.reports import Report, ReportRowPublic
from api.security.principal import Principal, Role

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
# Responders are left out: a report spans every team's incidents.
DAY_MS = 86_400_000
Reader = Annotated[Principal, Depends(require(Role.admin, Role.operator, Role.viewer))]


@router.get(
    "", summary="MTTA, MTTR, SLA breaches and escalations of incidents opened in a time range",
    responses={
        422: {"model": Invalid, "description": "bad or too wide time range, or unknown policy"},
        503: {"model": Problem, "description": "the alerts service is not running here"},
    },
)
async def get_report(
    caller: Reader,
    service: AlertServiceDep,
    bounds: BoundsDep,
    since: Annotated[Instant | None, Query(
        description=f"incidents opened at or after ({TIME}); required")] = None,
    until: Annotated[Instant | None, Query(
        description=f"…and before ({TIME}); entries read up to it; required")] = None,
    start: Annotated[Instant | None, alias_of("since")] = None,
    end: Annotated[Instant | None, alias_of("until")] = None,
    group_by: GroupBy = GroupBy.TEAM,
    policy_id: Annotated[
        str | None, Query(description="policy whose deadlines are the SLA; default: catch-all's")
    ] = None,
) -> Report:
    start_ms, end_ms = time_range(("since", since, "start", start), ("until", until, "end", end))
    if start_ms is None or end_ms is None:
        raise HTTPException(422, "a report needs since and until")
    if end_ms - start_ms > bounds.report_days * DAY_MS:
        raise HTTPException(422, f"a report spans at most {bounds.report_days} days")
    policy = policy_id or service.routing.routes[-1].policy
    if policy not in {p.id for p in service.routing.policies}:
        raise HTTPException(422, f"no escalation policy {policy!r}")
    rows = await service.report(start_ms, end_ms, group_by, policy)
    return Report(
        start_ms=start_ms, end_ms=end_ms, group_by=group_by, policy_id=policy,
        rows=[ReportRowPublic.of(r) for r in rows],
    )


