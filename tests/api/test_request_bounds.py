"""Bounds on what one request may ask for: page sizes, report ranges, backtest spans, notes per
incident and live streams per principal. Past each is a 4xx problem that names the bound."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect

from api.context import Bounds
from api.query import MAX_PAGE
from api.security.principal import Role
from api.stream_slots import StreamSlots
from tests.api.conftest import GAS_TEAM, World
from tests.api.test_live_api import closed_with, token_of, until_subscribers, ws_url
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
OPERATOR = bearer(Role.operator, subject="olga")
PROBLEM_JSON = "application/problem+json"


@pytest.mark.parametrize("path", [
    "/api/v1/incidents", "/api/v1/alerts", "/api/v1/audit", "/api/v1/devices",
])
async def test_a_page_larger_than_the_bound_is_refused(
    client: httpx.AsyncClient, path: str
) -> None:
    refused = await client.get(path, params={"limit": MAX_PAGE + 1}, headers=ADMIN)
    assert refused.status_code == 422 and "limit" in refused.text
    largest = await client.get(path, params={"limit": MAX_PAGE}, headers=ADMIN)
    assert largest.status_code == 200, largest.text


async def test_a_report_wider_than_the_bound_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    world.context.bounds = Bounds(report_days=7)
    wide = await client.get("/api/v1/reports", headers=ADMIN, params={
        "start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:01Z"})
    assert wide.status_code == 422
    assert wide.json()["detail"] == "a report spans at most 7 days"
    week = await client.get("/api/v1/reports", headers=ADMIN, params={
        "start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z"})
    assert week.status_code == 200, week.text


async def test_a_backtest_longer_than_the_bound_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    world.context.bounds = Bounds(backtest_days=1)
    long = await client.post("/api/v1/rules/backtest", headers=OPERATOR, json={
        "rule_ids": ["aq-o3"], "start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:01Z"})
    assert long.status_code == 422
    assert long.json()["detail"]["reason"] == "range longer than 1 days"


async def test_notes_past_the_bound_are_refused_with_409(
    client: httpx.AsyncClient, world: World
) -> None:
    world.context.bounds = Bounds(notes_per_incident=2)
    url = f"/api/v1/incidents/{world.incident_of[GAS_TEAM]}/notes"
    for text in ("one", "two"):
        assert (await client.post(url, headers=OPERATOR, json={"text": text})).status_code == 200
    third = await client.post(url, headers=OPERATOR, json={"text": "three"})
    assert third.status_code == 409
    assert third.headers["content-type"] == PROBLEM_JSON
    assert "2 notes" in third.json()["detail"]
    timeline = (await client.get(url.removesuffix("/notes"), headers=OPERATOR)).json()["timeline"]
    assert [e["detail"] for e in timeline if e["kind"] == "note"] == ["one", "two"]


async def test_live_streams_per_principal_are_bounded(served: str, world: World) -> None:
    world.context.live_streams = StreamSlots(limit=2)
    token = token_of(OPERATOR)
    async with httpx.AsyncClient(base_url=served, timeout=10) as http, \
            connect(ws_url(served, token)), \
            http.stream("GET", "/api/v1/live/sse", params={"token": token}) as sse:
        assert sse.status_code == 200
        await until_subscribers(world, 2)
        refused = await http.get("/api/v1/live/sse", params={"token": token})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert "at most 2 live streams" in refused.json()["detail"]
        async with connect(ws_url(served, token)) as third:
            code, reason = await closed_with(third)
        assert code == 1008 and "at most 2 live streams" in reason
        someone_else = token_of(bearer(Role.viewer, subject="vera"))
        async with connect(ws_url(served, someone_else)):
            await until_subscribers(world, 3)  # the bound is per principal
    await until_subscribers(world, 0)
    async with connect(ws_url(served, token)), connect(ws_url(served, token)):
        await until_subscribers(world, 2)  # the slots came back when the streams ended

