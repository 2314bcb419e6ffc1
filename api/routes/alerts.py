"""Alerts: the recorded alerts with filters and paging, and one alert with its history.

A responder sees the alerts of the incidents of their own teams only; any other alert is a 404
to them, so its existence does not leak. Every other role sees all alerts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from alerts.model import AlertState
from alerts.service import AlertQuery
from api.clock import Instant
from api.cursor import Cursor, page_of, start_of
from api.deps import AlertServiceDep, Caller
from api.query import TIME, Offset, PageSize, alias_of, time_range
from api.schemas.alerts import AlertChangePublic, AlertDetail, AlertPage, AlertPublic
from api.schemas.common import SeverityName
from api.schemas.problems import Invalid, Problem
from rules.detection import Category, Severity

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such alert (or not one of your teams')"}
}


@router.get(
    "", summary="List alerts with filters and paging, newest first",
    responses={422: {"model": Invalid, "description": "bad filter, time range or cursor"}},
)
async def list_alerts(
    caller: Caller,
    alerts: AlertServiceDep,
    state: Annotated[list[AlertState] | None, Query(description="one or more states")] = None,
    severity: Annotated[list[SeverityName] | None, Query(description="one or more")] = None,
    category: Category | None = None,
    district: str | None = None,
    rule_id: str | None = None,
    device_id: str | None = None,
    since: Annotated[Instant | None, Query(description=f"started at or after ({TIME})")] = None,
    until: Annotated[Instant | None, Query(description=f"started before ({TIME})")] = None,
    start: Annotated[Instant | None, alias_of("since")] = None,
    end: Annotated[Instant | None, alias_of("until")] = None,
    limit: PageSize = 100,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> AlertPage:
    after = start_of("alerts", cursor, offset, (int, str))
    since_ms, until_ms = time_range(("since", since, "start", start), ("until", until, "end", end))
    query = AlertQuery(
        states=frozenset(state or ()),
        severities=frozenset(Severity.parse(s) for s in severity or ()),
        category=category,
        district=district,
        rule_id=rule_id,
        device_id=device_id,
        started_from_ms=since_ms,
        started_to_ms=until_ms,
        visible_teams=caller.visible_teams,
        limit=limit + 1,
        offset=offset,
        after=after,
    )
    found, total = await alerts.find_alerts(query)
    page, next_cursor = page_of("alerts", found, limit, lambda a: (a.started_ms, a.id))
    return AlertPage(items=[AlertPublic.of(a) for a in page], total=total, limit=limit,
                     offset=offset, next_cursor=next_cursor)


@router.get("/{alert_id}", summary="One alert with its state and severity history",
            responses=NOT_FOUND)
async def get_alert(alert_id: str, caller: Caller, alerts: AlertServiceDep) -> AlertDetail:
    found = await alerts.find_alert(alert_id, caller.visible_teams)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return AlertDetail(
        **AlertPublic.of(found.alert).model_dump(),
        incident_id=found.incident_id,
        history=[AlertChangePublic.of(c) for c in found.alert.history],
    )
