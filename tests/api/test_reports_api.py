"""The report endpoint over a real AlertService on SQLite: MTTA, MTTR, SLA breaches and
escalations per team, category and severity, who may read it, and bad ranges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from alerts.model import IncidentState
from api.security.principal import Role
from tests.api.conftest import FIELD_TEAM, GAS_TEAM, T0_MS, World
from tests.support.auth import bearer

MIN = 60_000
ADMIN = bearer(Role.admin)
OPERATOR = bearer(Role.operator)
VIEWER = bearer(Role.viewer)
RESPONDER = bearer(Role.responder, GAS_TEAM)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


async def progress(world: World) -> None:
    """The gas team acknowledges after 10 min (its red deadline is 5 min) and resolves after 30;
    nobody acknowledges the flood, which escalates once its yellow hour has passed."""
    gas = world.incident_of[GAS_TEAM]
    await world.alerts.acknowledge(gas, "ana", T0_MS + 10 * MIN)
    await world.alerts.transition(gas, IncidentState.RESOLVED, "ana", T0_MS + 30 * MIN, "fixed")
    await world.alerts.tick(T0_MS + 65 * MIN)


async def report(client: httpx.AsyncClient, headers: dict[str, str], **params: Any
                 ) -> httpx.Response:
    return await client.get("/api/v1/reports", headers=headers, params={
        "start": iso(T0_MS - 60 * MIN), "end": iso(T0_MS + 120 * MIN), **params})


async def test_by_team(client: httpx.AsyncClient, world: World) -> None:
    await progress(world)
    response = await report(client, OPERATOR)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["group_by"], body["policy_id"]) == ("team", "standard")
    rows = {r["key"]: r for r in body["rows"]}
    assert set(rows) == {GAS_TEAM, "flood-control", FIELD_TEAM}  # the flood's escalation team
    gas = rows[GAS_TEAM]
    assert (gas["incidents"], gas["acknowledged"], gas["resolved"]) == (1, 1, 1)
    assert (gas["mtta_s"], gas["mttr_s"]) == (600.0, 1800.0)
    assert (gas["sla_breaches"], gas["escalations"]) == (1, 0)
    flood = rows["flood-control"]
    assert (flood["acknowledged"], flood["mtta_s"], flood["mttr_s"]) == (0, None, None)
    assert (flood["sla_breaches"], flood["escalations"]) == (1, 1)


async def test_by_category_and_severity(client: httpx.AsyncClient, world: World) -> None:
    await progress(world)
    by_category = (await report(client, VIEWER, group_by="category")).json()["rows"]
    assert [r["key"] for r in by_category] == ["device", "flood", "safety"]
    by_severity = (await report(client, ADMIN, group_by="severity")).json()["rows"]
    assert {r["key"]: r["incidents"] for r in by_severity} == {"red": 1, "yellow": 1, "blue": 1}
    before = (await client.get("/api/v1/reports", headers=ADMIN, params={
        "start": iso(T0_MS), "end": iso(T0_MS + 1_000)})).json()["rows"]
    assert [(r["key"], r["acknowledged"]) for r in before] == [(GAS_TEAM, 0)]


async def test_who_may_read_and_bad_input(client: httpx.AsyncClient, world: World) -> None:
    assert (await report(client, RESPONDER)).status_code == 403  # spans every team
    assert (await client.get("/api/v1/reports", params={
        "start": iso(T0_MS), "end": iso(T0_MS + MIN)})).status_code == 401
    backwards = await client.get("/api/v1/reports", headers=ADMIN, params={
        "start": iso(T0_MS), "end": iso(T0_MS)})
    assert backwards.status_code == 422 and "end" in backwards.json()["detail"]
    assert (await report(client, ADMIN, group_by="district")).status_code == 422
    unknown = await report(client, ADMIN, policy_id="nope")
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]
    assert (await report(client, ADMIN, policy_id="maintenance")).status_code == 200
    naive = await client.get("/api/v1/reports", headers=ADMIN, params={
        "start": "2026-11-18T00:00:00", "end": "2026-11-19T00:00:00"})
    assert naive.status_code == 422
    missing = await client.get("/api/v1/reports", headers=ADMIN)
    assert missing.status_code == 422
