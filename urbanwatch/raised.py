"""What the platform raised, read from its SQL store for scoring (`urbanwatch score`).

Incidents with the team they were first dispatched to (an escalation later moves them to the
next level; routing is judged on the first dispatch), the highest severity they or their
alerts reached (their history), and their alerts' devices and areas; and every alert, for
device faults.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.sql.tables import AlertChangeRow, AlertRow, IncidentRow, TimelineRow
from simulators.scoring import RaisedAlert, RaisedIncident

DISPATCHED = "dispatched"


async def raised(
    sessions: async_sessionmaker[AsyncSession], since_ms: int, until_ms: int
) -> tuple[list[RaisedIncident], list[RaisedAlert]]:
    """Incidents opened and alerts started in [since_ms, until_ms]."""
    async with sessions() as session:
        rows = (await session.scalars(select(IncidentRow).where(
            IncidentRow.opened_ms.between(since_ms, until_ms)))).all()
        dispatches = (await session.execute(
            select(TimelineRow.incident_id, TimelineRow.detail)
            .where(TimelineRow.kind == DISPATCHED).order_by(TimelineRow.id))).all()
        alert_rows = (await session.scalars(select(AlertRow).where(
            AlertRow.started_ms.between(since_ms, until_ms)))).all()
        peaks = dict((await session.execute(
            select(AlertChangeRow.alert_id, func.max(AlertChangeRow.severity))
            .join(AlertRow, AlertRow.id == AlertChangeRow.alert_id)
            .where(AlertRow.started_ms.between(since_ms, until_ms))
            .group_by(AlertChangeRow.alert_id))).tuples().all())
    first: dict[str, str] = {}
    for incident_id, detail in dispatches:
        first.setdefault(incident_id, detail)
    started = {a.id: a.started_ms for a in alert_rows}
    incidents = [_incident(row, first.get(row.id), peaks, started) for row in rows]
    alerts = [RaisedAlert(a.id, a.rule_id, a.category, a.device_id, a.started_ms)
              for a in alert_rows]
    return incidents, alerts


def _incident(row: IncidentRow, dispatch: str | None, peaks: dict[str, int],
              started: dict[str, int]) -> RaisedIncident:
    handler, _, team = (dispatch or "").partition("/")
    members = row.members or []
    return RaisedIncident(
        id=row.id, category=row.category,
        severity=max([row.severity, *(peaks.get(m["alert_id"], 0) for m in members)]),
        opened_ms=row.opened_ms,
        detected_ms=min([started.get(m["alert_id"], row.opened_ms) for m in members]
                        or [row.opened_ms]),
        handler=handler or None, team=team or None,
        devices=tuple(sorted({m["device_id"] for m in members if m.get("device_id")})),
        districts=tuple(sorted({m["district"] for m in members if m.get("district")})),
        grids=tuple(sorted({m["grid"] for m in members if m.get("grid")})),
        alerts=len(members),
    )
