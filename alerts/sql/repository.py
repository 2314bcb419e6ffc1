"""Read and write alerts and incidents inside a caller's transaction (silences, the handlers
snapshot and the audit log are in `records`).

Every function takes an open `AsyncSession`, so the service can put a whole state change (alerts,
incidents, outbox rows) in one transaction. Histories and timelines are append-only: `save_*`
takes the value before and after a change and inserts only the new entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    column,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import Subquery, TableValuedAlias

from alerts.model import (
    FINAL_INCIDENT_STATES,
    OPEN_ALERT_STATES,
    Alert,
    AlertChange,
    AlertState,
    Incident,
    IncidentState,
    Member,
    TimelineEntry,
    TimelineKind,
)
from alerts.sql.tables import AlertChangeRow, AlertRow, IncidentRow, TimelineRow
from devices.sql import Base
from rules.detection import Category, Severity


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def upsert(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert rows or overwrite them by primary key (SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = postgresql if is_postgresql(session) else sqlite
    stmt = dialect.insert(model)
    keys: list[str] = [col.name for col in sa_inspect(model).primary_key]
    changed = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    await session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed), rows)


# --- alerts -----------------------------------------------------------------------------------


async def save_alerts(session: AsyncSession, changes: Iterable[tuple[Alert | None, Alert]]) -> None:
    """Write each alert after a change; its history entries beyond `before`'s are appended."""
    rows, history = [], []
    for before, after in changes:
        row = {k: v for k, v in asdict(after).items() if k != "history"}
        rows.append({**row, "category": after.category.value, "severity": int(after.severity)})
        start = len(before.history) if before is not None else 0
        for seq, c in enumerate(after.history[start:], start):
            history.append(
                {
                    "alert_id": after.id,
                    "seq": seq,
                    "ts_ms": c.ts_ms,
                    "from_state": c.from_state,
                    "to_state": c.to_state,
                    "severity": int(c.severity),
                    "actor": c.actor,
                }
            )
    await upsert(session, AlertRow, rows)
    if history:
        await session.execute(insert(AlertChangeRow), history)


async def load_alerts(session: AsyncSession, *, open_only: bool = True) -> list[Alert]:
    query = select(AlertRow)
    if open_only:
        query = query.where(
            AlertRow.state.in_([s.value for s in OPEN_ALERT_STATES | {AlertState.CLEARED}])
        )
    return await _with_history(session, (await session.scalars(query)).all())


async def count_recorded(session: AsyncSession) -> tuple[int, int]:
    """(alerts, incidents) ever recorded."""
    alerts = await session.scalar(select(func.count()).select_from(AlertRow))
    incidents = await session.scalar(select(func.count()).select_from(IncidentRow))
    return int(alerts or 0), int(incidents or 0)


async def count_open_incidents(session: AsyncSession) -> dict[Severity, int]:
    """Incidents not yet closed or cancelled, by severity (severities with none left out)."""
    open_ = IncidentRow.state.not_in([s.value for s in FINAL_INCIDENT_STATES])
    rows = await session.execute(
        select(IncidentRow.severity, func.count()).where(open_).group_by(IncidentRow.severity)
    )
    return {Severity(level): int(n) for level, n in rows}


@dataclass(frozen=True)
class AlertQuery:
    """One page of alerts, newest first: each filter that is not None or empty must match.

    `visible_teams` are the teams whose incidents' alerts the caller may see (None: every
    alert, also those in no incident). `after` is a keyset position ``(started_ms, id)``: only
    the alerts that follow it in the list's order are on the page (the total counts all).
    """

    states: frozenset[AlertState] = frozenset()
    severities: frozenset[Severity] = frozenset()
    category: Category | None = None
    district: str | None = None
    rule_id: str | None = None
    device_id: str | None = None
    started_from_ms: int | None = None
    started_to_ms: int | None = None
    visible_teams: frozenset[str] | None = None
    limit: int = 100
    offset: int = 0
    after: tuple[int, str] | None = None


async def find_alerts(session: AsyncSession, q: AlertQuery) -> tuple[list[Alert], int]:
    """The page of alerts `q` asks for and how many match over all pages."""
    query = select(AlertRow).where(*_alert_filters(session, q))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    if q.after is not None:
        started_ms, alert_id = q.after
        query = query.where(or_(AlertRow.started_ms < started_ms, and_(
            AlertRow.started_ms == started_ms, AlertRow.id > alert_id)))
    newest = query.order_by(AlertRow.started_ms.desc(), AlertRow.id)
    rows = (await session.scalars(newest.limit(q.limit).offset(q.offset))).all()
    return await _with_history(session, rows), int(total or 0)


def _alert_filters(session: AsyncSession, q: AlertQuery) -> list[ColumnElement[bool]]:
    if _has_nul(q.district, q.rule_id, q.device_id):
        return [false()]
    equal = (
        (AlertRow.category, None if q.category is None else q.category.value),
        (AlertRow.district, q.district),
        (AlertRow.rule_id, q.rule_id),
        (AlertRow.device_id, q.device_id),
    )
    found: list[ColumnElement[bool]] = [col == value for col, value in equal if value is not None]
    if q.states:
        found.append(AlertRow.state.in_(sorted(s.value for s in q.states)))
    if q.severities:
        found.append(AlertRow.severity.in_(sorted(int(s) for s in q.severities)))
    if q.started_from_ms is not None:
        found.append(AlertRow.started_ms >= q.started_from_ms)
    if q.started_to_ms is not None:
        found.append(AlertRow.started_ms < q.started_to_ms)
    if q.visible_teams is not None:
        held = _memberships(session, q.visible_teams)
        found.append(AlertRow.id.in_(select(held.c.alert_id)))
    return found


@dataclass(frozen=True)
class AlertWithIncident:
    """An alert with its history, and the id of the incident holding it (None: in none)."""

    alert: Alert
    incident_id: str | None


async def find_alert(
    session: AsyncSession, alert_id: str, visible_teams: frozenset[str] | None = None
) -> AlertWithIncident | None:
    """The alert `alert_id` and the newest incident holding it, or None if there is no such
    alert or it is not visible: `visible_teams` as in `AlertQuery` (None: every alert, also
    those in no incident; else an incident of one of these teams must hold it, and that is the
    incident given)."""
    if _has_nul(alert_id):
        return None
    held = _memberships(session, visible_teams)
    newest = (
        select(held.c.incident_id)
        .where(held.c.alert_id == alert_id)
        .order_by(held.c.opened_ms.desc(), held.c.incident_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(AlertRow, newest).where(AlertRow.id == alert_id)
    found = (await session.execute(query)).one_or_none()
    if found is None:
        return None
    row, incident_id = found
    if visible_teams is not None and incident_id is None:
        return None
    [alert] = await _with_history(session, [row])
    return AlertWithIncident(alert, incident_id)


def _has_nul(*texts: str | None) -> bool:
    """Whether a text filter holds a NUL character, which no stored text does: the query then
    matches nothing (PostgreSQL would refuse the parameter)."""
    return any(t is not None and "\x00" in t for t in texts)


async def _with_history(session: AsyncSession, rows: Sequence[AlertRow]) -> list[Alert]:
    history = await _children(
        session, AlertChangeRow, AlertChangeRow.alert_id, [r.id for r in rows]
    )
    return [_alert(r, history.get(r.id, [])) for r in rows]


def _alert(row: AlertRow, history: list[AlertChangeRow]) -> Alert:
    changes = tuple(
        AlertChange(
            h.ts_ms,
            AlertState(h.from_state) if h.from_state else None,
            AlertState(h.to_state),
            Severity(h.severity),
            h.actor,
        )
        for h in sorted(history, key=lambda h: h.seq)
    )
    return Alert(
        id=row.id,
        rule_id=row.rule_id,
        subject=row.subject,
        category=Category(row.category),
        severity=Severity(row.severity),
        state=AlertState(row.state),
        started_ms=row.started_ms,
        updated_ms=row.updated_ms,
        value=row.value,
        cleared_ms=row.cleared_ms,
        device_id=row.device_id,
        metric=row.metric,
        district=row.district,
        grid=row.grid,
        flapping=row.flapping,
        notified=row.notified,
        history=changes,
    )


# --- incidents --------------------------------------------------------------------------------


async def save_incidents(
    session: AsyncSession,
    changes: Iterable[tuple[Incident | None, Incident]],
    policies: Mapping[str, str | None],
) -> None:
    """Write each incident after a change and append its new timeline entries."""
    rows, entries = [], []
    for before, after in changes:
        row = {k: v for k, v in asdict(after).items() if k not in ("members", "timeline")}
        row |= {
            "category": after.category.value,
            "severity": int(after.severity),
            "members": [_member_json(m) for m in after.members],
            "policy_id": policies.get(after.id),
        }
        rows.append(row)
        start = len(before.timeline) if before is not None else 0
        entries += [timeline_row(after.id, e) for e in after.timeline[start:]]
    await upsert(session, IncidentRow, rows)
    if entries:
        await session.execute(insert(TimelineRow), entries)


def timeline_row(incident_id: str, entry: TimelineEntry) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "ts_ms": entry.ts_ms,
        "actor": entry.actor,
        "kind": entry.kind.value,
        "detail": entry.detail,
    }


async def load_incidents(
    session: AsyncSession,
    *,
    ids: Sequence[str] | None = None,
    open_only: bool = False,
    opened_range_ms: tuple[int, int] | None = None,
) -> list[tuple[Incident, str | None]]:
    """Incidents with their full timelines, each with the id of its escalation policy."""
    query = select(IncidentRow).order_by(IncidentRow.opened_ms, IncidentRow.id)
    if ids is not None:
        query = query.where(IncidentRow.id.in_(ids))
    if open_only:
        query = query.where(IncidentRow.state.not_in([s.value for s in FINAL_INCIDENT_STATES]))
    if opened_range_ms is not None:
        start_ms, end_ms = opened_range_ms
        query = query.where(IncidentRow.opened_ms >= start_ms, IncidentRow.opened_ms < end_ms)
    rows = (await session.scalars(query)).all()
    incidents = await _with_timelines(session, rows)
    return [(i, r.policy_id) for i, r in zip(incidents, rows, strict=True)]


@dataclass(frozen=True)
class IncidentQuery:
    """One page of incidents, newest first: each filter that is not None or empty must match.

    `visible_teams` are the teams whose incidents the caller may see (None: every incident,
    also those with no team). `after` is a keyset position ``(opened_ms, id)``: only the
    incidents that follow it in the list's order are on the page (the total counts all).
    """

    states: frozenset[IncidentState] = frozenset()  # any of them (empty: every state)
    severity: Severity | None = None
    category: Category | None = None
    district: str | None = None
    team_id: str | None = None
    opened_from_ms: int | None = None
    opened_to_ms: int | None = None
    visible_teams: frozenset[str] | None = None
    limit: int = 100
    offset: int = 0
    after: tuple[int, str] | None = None


async def find_incidents(session: AsyncSession, q: IncidentQuery) -> tuple[list[Incident], int]:
    """The page of incidents `q` asks for and how many match over all pages."""
    query = select(IncidentRow).where(*_incident_filters(session, q))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    if q.after is not None:
        opened_ms, incident_id = q.after
        query = query.where(or_(IncidentRow.opened_ms < opened_ms, and_(
            IncidentRow.opened_ms == opened_ms, IncidentRow.id < incident_id)))
    newest = query.order_by(IncidentRow.opened_ms.desc(), IncidentRow.id.desc())
    rows = (await session.scalars(newest.limit(q.limit).offset(q.offset))).all()
    return await _with_timelines(session, rows), int(total or 0)


def _incident_filters(session: AsyncSession, q: IncidentQuery) -> list[ColumnElement[bool]]:
    if _has_nul(q.district, q.team_id):
        return [false()]
    equal = (
        (IncidentRow.severity, None if q.severity is None else int(q.severity)),
        (IncidentRow.category, None if q.category is None else q.category.value),
        (IncidentRow.team_id, q.team_id),
    )
    found: list[ColumnElement[bool]] = [col == value for col, value in equal if value is not None]
    if q.states:
        found.append(IncidentRow.state.in_(sorted(s.value for s in q.states)))
    if q.district is not None:
        member = _members(session)
        has_district = member.c.value["district"].as_string() == q.district
        found.append(select(literal(1)).select_from(member).where(has_district).exists())
    if q.opened_from_ms is not None:
        found.append(IncidentRow.opened_ms >= q.opened_from_ms)
    if q.opened_to_ms is not None:
        found.append(IncidentRow.opened_ms < q.opened_to_ms)
    if q.visible_teams is not None:
        found.append(IncidentRow.team_id.in_(sorted(q.visible_teams)))
    return found


def _members(session: AsyncSession) -> TableValuedAlias:
    """The `members` of incidents as rows, one JSON object each in column `value`; use it in
    a query over `incidents` (SQLite's `json_each`, PostgreSQL's `json_array_elements`)."""
    each = func.json_array_elements if is_postgresql(session) else func.json_each
    return each(IncidentRow.members).table_valued(column("value", JSON)).alias("member")


def _memberships(session: AsyncSession, teams: frozenset[str] | None) -> Subquery:
    """One row per incident member: its `alert_id`, and its incident's `incident_id` and
    `opened_ms`; only incidents of `teams` (None: every incident)."""
    member = _members(session)
    query = (
        select(
            member.c.value["alert_id"].as_string().label("alert_id"),
            IncidentRow.id.label("incident_id"),
            IncidentRow.opened_ms,
        )
        .select_from(IncidentRow)
        .join(member, true())
    )
    if teams is not None:
        query = query.where(IncidentRow.team_id.in_(sorted(teams)))
    return query.subquery("membership")


async def _with_timelines(session: AsyncSession, rows: Sequence[IncidentRow]) -> list[Incident]:
    timelines = await _children(session, TimelineRow, TimelineRow.incident_id, [r.id for r in rows])
    return [_incident(r, timelines.get(r.id, [])) for r in rows]


def _member_json(m: Member) -> dict[str, Any]:
    return {**asdict(m), "severity": int(m.severity)}


def _incident(row: IncidentRow, timeline: list[TimelineRow]) -> Incident:
    members = tuple(Member(**{**m, "severity": Severity(m["severity"])}) for m in row.members)
    entries = tuple(
        TimelineEntry(e.ts_ms, e.actor, TimelineKind(e.kind), e.detail)
        for e in sorted(timeline, key=lambda e: e.id)
    )
    return Incident(
        id=row.id,
        title=row.title,
        category=Category(row.category),
        state=IncidentState(row.state),
        members=members,
        opened_ms=row.opened_ms,
        updated_ms=row.updated_ms,
        last_alert_ms=row.last_alert_ms,
        handler_id=row.handler_id,
        team_id=row.team_id,
        escalation_level=row.escalation_level,
        dispatched_ms=row.dispatched_ms,
        acknowledged_ms=row.acknowledged_ms,
        resolved_ms=row.resolved_ms,
        closed_ms=row.closed_ms,
        escalated_ms=row.escalated_ms,
        last_notified_ms=row.last_notified_ms,
        timeline=entries,
    )


async def _children(
    session: AsyncSession, model: type, column: Any, ids: list[str]
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for start in range(0, len(ids), 500):  # well under SQLite's and asyncpg's parameter limits
        chunk = ids[start : start + 500]
        found: Any = await session.scalars(select(model).where(column.in_(chunk)))
        for row in found.all():
            out.setdefault(getattr(row, column.key), []).append(row)
    return out
