"""Alerts: the recorded alerts with filters and paging, and one alert with its history.

A responder sees the alerts of the incidents of their own teams only; any other alert is a 404
to them, so its existence does not leak. Every other role sees all alerts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from alerts.model import AlertState
from alerts.service import AlertQuery
from api.clock import epoch_ms
from api.deps import AlertServiceDep, Caller
from api.query import Offset, PageSize
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
    responses={422: {"model": Invalid, "description": "bad filter or time range"}},
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
    start: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    end: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    limit: PageSize = 100,
    offset: Offset = 0,
) -> AlertPage:
    start_ms = None if start is None else epoch_ms(start)
    end_ms = None if end is None else epoch_ms(end)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise HTTPException(422, "end must be after start")
    query = AlertQuery(
        states=frozenset(state or ()),
        severities=frozenset(Severity.parse(s) for s in severity or ()),
        category=category,
        district=district,
        rule_id=rule_id,
        device_id=device_id,
        started_from_ms=start_ms,
        started_to_ms=end_ms,
        visible_teams=caller.visible_teams,
        limit=limit,
        offset=offset,
    )
    page, total = await alerts.find_alerts(query)
    return AlertPage(
        items=[AlertPublic.of(a) for a in page], total=total, limit=limit, offset=offset
    )


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
