"""Reports: MTTA, MTTR, SLA breaches and escalations per team, category or severity."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from alerts.decisions.reports import GroupBy
from api.clock import epoch_ms
from api.deps import AlertServiceDep, BoundsDep, require
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
    start: Annotated[datetime, Query(description="incidents opened at or after (ISO 8601)")],
    end: Annotated[datetime, Query(description="…and before (ISO 8601); entries read up to it")],
    group_by: GroupBy = GroupBy.TEAM,
    policy_id: Annotated[
        str | None, Query(description="policy whose deadlines are the SLA; default: catch-all's")
    ] = None,
) -> Report:
    start_ms, end_ms = epoch_ms(start), epoch_ms(end)
    if end_ms <= start_ms:
        raise HTTPException(422, "end must be after start")
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


