"""Alerts: the recorded alerts with filters and paging, and one alert with its history.

A responder sees the alerts of the incidents of their own teams only; any other alert is a 404
to them, so its existence does not leak. Every other role sees all alerts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.model import AlertState
from alerts.service import AlertQuery
from alerts.store import AlertChangeRow, AlertRow, IncidentRow
from api.clock import epoch_ms
from api.deps import Alerts, Caller, SessionDep
from api.schemas import Problem
from api.schemas_alerts import (
    AlertChangePublic,
    AlertDetail,
    AlertPage,
    AlertPublic,
    SeverityName,
)
from api.schemas_incidents import Invalid
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
    alerts: Alerts,
    state: Annotated[list[AlertState] | None, Query(description="one or more states")] = None,
    severity: Annotated[list[SeverityName] | None, Query(description="one or more")] = None,
    category: Category | None = None,
    district: str | None = None,
    rule_id: str | None = None,
    device_id: str | None = None,
    start: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    end: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
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
async def get_alert(alert_id: str, session: SessionDep, caller: Caller) -> AlertDetail:
    row = await session.get(AlertRow, alert_id)
    if row is None:
        raise _not_found(alert_id)
    incident = await _incident_of(session, row)
    if not caller.sees_team(incident.team_id if incident else None):
        raise _not_found(alert_id)
    history = await session.scalars(
        select(AlertChangeRow).where(AlertChangeRow.alert_id == alert_id)
        .order_by(AlertChangeRow.seq)
    )
    return AlertDetail(
        **AlertPublic.of(row).model_dump(),
        incident_id=incident.id if incident else None,
        history=[AlertChangePublic.of(h) for h in history.all()],
    )


async def _incident_of(session: AsyncSession, alert: AlertRow) -> IncidentRow | None:
    """The incident holding `alert`: one opened before the alert's last change that took an
    alert in after the alert started (an incident's `last_alert_ms` is its newest member's)."""
    candidates = await session.scalars(
        select(IncidentRow).where(
            IncidentRow.opened_ms <= alert.updated_ms,
            IncidentRow.last_alert_ms >= alert.started_ms,
        )
    )
    return next(
        (i for i in candidates.all() if any(m["alert_id"] == alert.id for m in i.members)), None
    )


def _not_found(alert_id: str) -> HTTPException:
    return HTTPException(404, f"no alert {alert_id!r}")


