"""The alerts tables (migration 0002) and their round trips, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

from sqlalchemy import inspect, select

from alerts.decisions import incidents as machine
from alerts.decisions.silences import Field, Matcher, Op, Silence, Weekly
from alerts.model import Alert, AlertChange, AlertState, Incident, IncidentState, Member
from alerts.routing import load_routing
from alerts.sql import records
from alerts.sql import repository as repo
from alerts.sql.tables import AuditRow, HandlerRow, SilenceRow
from rules.detection import Category, Severity
from tests.alerts.conftest import MIN, T0

TABLES = {
    "alerts",
    "alert_history",
    "incidents",
    "incident_timeline",
    "silences",
    "handlers",
    "outbox",
    "audit_log",
}


async def test_migration_creates_the_alert_tables(sessions):
    async with sessions() as session:
        conn = await session.connection()
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert names >= TABLES


def alert(state=AlertState.FIRING, history=1) -> Alert:
    changes = (
        AlertChange(T0, None, AlertState.FIRING, Severity.YELLOW),
        AlertChange(T0 + MIN, AlertState.FIRING, AlertState.FIRING, Severity.RED),
        AlertChange(T0 + 2 * MIN, AlertState.FIRING, state, Severity.RED, "ops"),
    )
    return Alert(
        "al-1",
        "gas-high",
        "gas-1",
        Category.SAFETY,
        Severity.RED,
        state,
        T0,
        T0 + 2 * MIN,
        42.5,
        None,
        "gas-1",
        "ch4",
        "dongcheng",
        "g-1-1",
        False,
        changes[:history],
    )


async def test_alert_round_trip_appends_only_new_history(sessions):
    first, later = alert(history=1), alert(AlertState.ACKNOWLEDGED, history=3)
    async with sessions.begin() as session:
        await repo.save_alerts(session, [(None, first)])
    async with sessions.begin() as session:
        await repo.save_alerts(session, [(first, later)])
    async with sessions() as session:
        [loaded] = await repo.load_alerts(session)
    assert loaded == later


async def test_closed_alerts_are_kept_but_not_loaded_as_open(sessions):
    closed = alert(AlertState.CLOSED, history=3)
    async with sessions.begin() as session:
        await repo.save_alerts(session, [(None, closed)])
    async with sessions() as session:
        assert await repo.load_alerts(session) == []
        assert await repo.load_alerts(session, open_only=False) == [closed]


def incident() -> Incident:
    members = (
        Member("al-1", "gas-high", Severity.RED, "gas-1", "dongcheng", "g-1-1"),
        Member("al-2", "gas-high", Severity.YELLOW, None, None, "g-1-2", cleared=True),
    )
    opened = Incident(
        "in-1", "Safety hazard", Category.SAFETY, IncidentState.NEW, members, T0, T0, T0
    )
    return machine.record(opened, machine.TimelineKind.OPENED, "system", T0, "al-1")


async def test_incident_round_trip_with_timeline_and_policy(sessions):
    new = incident()
    sent = machine.dispatch(new, "gas-company", "gas-emergency", "system", T0 + 1)
    acked = machine.acknowledge(sent, "responder-7", T0 + 2 * MIN)
    async with sessions.begin() as session:
        await repo.save_incidents(session, [(None, new)], {"in-1": "standard"})
        await repo.save_incidents(session, [(new, sent)], {"in-1": "standard"})
    async with sessions.begin() as session:
        await repo.save_incidents(session, [(sent, acked)], {"in-1": "standard"})
    async with sessions() as session:
        [(loaded, policy)] = await repo.load_incidents(session, ids=["in-1"])
        in_range = await repo.load_incidents(session, opened_range_ms=(T0, T0 + 1))
        after = await repo.load_incidents(session, opened_range_ms=(T0 + 1, T0 + MIN))
    assert loaded == acked and policy == "standard"
    assert [k.value for k in (e.kind for e in loaded.timeline)] == [
        "opened",
        "dispatched",
        "acknowledged",
    ]
    assert len(in_range) == 1 and after == []


async def test_final_incidents_are_not_open(sessions):
    cancelled = machine.cancel(incident(), "ops", T0 + 1, "false alarm")
    async with sessions.begin() as session:
        await repo.save_incidents(session, [(None, cancelled)], {})
    async with sessions() as session:
        assert await repo.load_incidents(session, open_only=True) == []
        [(loaded, policy)] = await repo.load_incidents(session)
    assert loaded.state is IncidentState.CANCELLED and policy is None


async def test_silence_round_trip_and_expiry(sessions):
    weekly = Weekly(frozenset({6}), time(2), time(4), "Asia/Shanghai")
    recurring = Silence(
        "s-1", (Matcher(Field.DISTRICT, "dongcheng"),), T0, None, "ops", "pump maintenance", weekly
    )
    one_off = Silence(
        "s-2",
        (
            Matcher(Field.DEVICE, "gas-1"),
            Matcher(Field.RULE, "gas-high"),
            Matcher(Field.SEVERITY, "orange|red", Op.REGEX),
            Matcher(Field.DEVICE_TYPE, "water_level", Op.NOT_EQUAL),
        ),
        T0,
        T0 + 60 * MIN,
        "ops",
        "calibration",
    )
    async with sessions.begin() as session:
        for s in (recurring, one_off):
            session.add(SilenceRow(**records.silence_row(s, T0)))
    async with sessions.begin() as session:
        assert await records.expire_silence(session, "s-2", T0 + 10 * MIN)
        assert not await records.expire_silence(session, "s-2", T0 + 11 * MIN)
        assert not await records.expire_silence(session, "nope", T0)
    async with sessions() as session:
        active = [
            records.silence_of(r)
            for r in await records.load_silences(session, include_expired=False)
        ]
        every = [
            records.silence_of(r)
            for r in await records.load_silences(session, include_expired=True)
        ]
    assert active == [recurring]
    assert every == [recurring, replace(one_off, ends_ms=T0 + 10 * MIN)]
    assert [m.op for m in every[1].matchers][2:] == [Op.REGEX, Op.NOT_EQUAL]


async def test_a_silence_stored_before_operators_reads_as_equality(sessions):
    row = records.silence_row(
        Silence("s-old", (Matcher(Field.DEVICE, "gas-1"),), T0, T0 + MIN, "ops", "old"), T0
    )
    row["matchers"] = [{"field": "device", "value": "gas-1"}]
    async with sessions.begin() as session:
        session.add(SilenceRow(**row))
    async with sessions() as session:
        [loaded] = await records.load_silences(session, include_expired=False)
    assert records.silence_of(loaded).matchers == (Matcher(Field.DEVICE, "gas-1", Op.EQUAL),)


async def test_handlers_snapshot_and_audit(sessions):
    routing = load_routing()
    async with sessions.begin() as session:
        await records.save_handlers(session, routing, T0)
        await records.save_handlers(session, routing, T0 + 1)  # rewritten, not duplicated
        await records.audit(session, T0, "ops", "acknowledge", "incident", "in-1", "seen")
    async with sessions() as session:
        handlers = (await session.scalars(select(HandlerRow))).all()
        [entry] = (await session.scalars(select(AuditRow))).all()
    assert {h.id for h in handlers} == {h.id for h in routing.handlers}
    assert {h.updated_ms for h in handlers} == {T0 + 1}
    gas = next(h for h in handlers if h.id == "gas-company")
    assert gas.teams[0]["id"] == "gas-emergency"
    assert (entry.actor, entry.action, entry.entity_id, entry.detail) == (
        "ops",
        "acknowledge",
        "in-1",
        "seen",
    )
