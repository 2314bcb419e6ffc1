"""The live event WebSocket over a real socket (uvicorn + the `websockets` client): refused
without a valid token (close code 1008), events as they happen, filtered for responders, the
subscription dropped when the client goes away, and the stream closed when its token expires
or its caller's access is revoked (user disabled, API key revoked); API keys work like tokens."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from api.routes import live
from api.security.api_keys import ApiKeyStore
from api.security.principal import Principal, Role
from api.security.tokens import issue_access_token
from api.security.users import UserStore
from rules.detection import Category, Severity
from tests.api.conftest import DEVICES, FLOOD_TEAM, GAS_TEAM, T0_MS, World, detection
from tests.support.auth import SECRET, bearer
from tests.support.polling import eventually
from urbanwatch.cli.app import app as cli

WAIT_S = 10  # an upper bound for a message that is due; never reached when things work
CHECK_S = 0.05  # how often open streams re-check their caller in these tests


def ws_url(base: str, token: str | None = None) -> str:
    url = base.replace("http://", "ws://") + "/api/v1/live"
    return url if token is None else f"{url}?token={token}"


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
    return event


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """The code and reason the server closed `ws` with."""
    with pytest.raises(ConnectionClosedError) as closed:
        await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def until_subscribers(world: World, count: int) -> None:
    await eventually(lambda: world.hub.subscribers == count, f"{count} live subscriber(s)",
                     WAIT_S, interval_s=0.01)


@pytest.mark.parametrize(
    "token",
    [None, "not-a-jwt", token_of(bearer(Role.admin, secret="another-secret-" + "y" * 32))],
    ids=["no-token", "garbage", "wrong-secret"],
)
async def test_unauthenticated_is_closed_with_1008(
    served: str, world: World, token: str | None
) -> None:
    async with connect(ws_url(served, token)) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "token" in closed.value.rcvd.reason or "authenticated" in closed.value.rcvd.reason
    assert world.hub.subscribers == 0


async def test_events_flow_to_an_operator(served: str, world: World) -> None:
    operator = bearer(Role.operator, subject="olga")
    gas = world.incident_of[GAS_TEAM]
    async with connect(ws_url(served, token_of(operator))) as ws, httpx.AsyncClient(
        base_url=served, headers=operator
    ) as http:
        await until_subscribers(world, 1)
        assert (await http.post(f"/api/v1/incidents/{gas}/acknowledge")).status_code == 200
        event = await next_event(ws)
        assert (event["type"], event["kind"], event["incident_id"]) == (
            "incident", "acknowledged", gas)
        assert (event["actor"], event["team_id"], event["state"]) == (
            "olga", GAS_TEAM, "acknowledged")
        smoke = detection(DEVICES[0], "fire-smoke", Category.FIRE, T0_MS + 60_000, Severity.RED)
        await world.alerts.handle([smoke], T0_MS + 60_000)
        alert = await next_event(ws)
        assert (alert["type"], alert["rule_id"], alert["state"]) == (
            "alert", "fire-smoke", "firing")
        opened = await next_event(ws)
        assert (opened["type"], opened["kind"]) == ("incident", "opened")
    await until_subscribers(world, 0)


async def test_a_responder_gets_only_their_teams_events(served: str, world: World) -> None:
    responder = bearer(Role.responder, GAS_TEAM, subject="ana")
    operator = bearer(Role.operator)
    gas, flood = world.incident_of[GAS_TEAM], world.incident_of[FLOOD_TEAM]
    async with connect(ws_url(served), additional_headers=responder) as ws, httpx.AsyncClient(
        base_url=served, headers=operator
    ) as http:
        await until_subscribers(world, 1)
        # another team's incident and a bare alert first: neither may reach the responder
        assert (await http.post(f"/api/v1/incidents/{flood}/acknowledge")).status_code == 200
        rain = detection(DEVICES[2], "water-rise", Category.FLOOD, T0_MS + 60_000, Severity.RED)
        await world.alerts.handle([rain], T0_MS + 60_000)
        note = {"text": "valve closed"}
        assert (await http.post(f"/api/v1/incidents/{gas}/notes", json=note)).status_code == 200
        event = await next_event(ws)
        assert (event["incident_id"], event["kind"], event["detail"]) == (
            gas, "note", "valve closed")
    await until_subscribers(world, 0)


async def test_closing_the_client_unsubscribes(served: str, world: World) -> None:
    async with connect(ws_url(served, token_of(bearer(Role.viewer)))):
        await until_subscribers(world, 1)
    await until_subscribers(world, 0)


async def test_the_stream_is_closed_when_its_token_expires(served: str, world: World) -> None:
    short_lived = issue_access_token(Principal("olga", Role.operator), SECRET, int(time.time()),
                                     ttl_s=4)  # long enough to connect and get one event
    async with connect(ws_url(served, short_lived)) as ws:
        await until_subscribers(world, 1)
        await world.alerts.note(world.incident_of[GAS_TEAM], "olga", T0_MS + 60_000, "on it", 500)
        assert (await next_event(ws))["detail"] == "on it"
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "token expired")
    await until_subscribers(world, 0)


async def test_an_api_key_opens_the_stream_scoped_to_its_team(served: str, world: World) -> None:
    store = ApiKeyStore(world.context.sessions)
    _, key = await store.create("flood-board", Role.responder, [FLOOD_TEAM], "root", T0_MS)
    flood = world.incident_of[FLOOD_TEAM]
    async with connect(ws_url(served), additional_headers={"X-API-Key": key}) as ws:
        await until_subscribers(world, 1)
        gas = world.incident_of[GAS_TEAM]
        await world.alerts.note(gas, "olga", T0_MS + 60_000, "not yours", 500)
        await world.alerts.note(flood, "olga", T0_MS + 60_000, "yours", 500)
        event = await next_event(ws)
        assert (event["incident_id"], event["detail"]) == (flood, "yours")
    async with connect(ws_url(served), additional_headers={"X-API-Key": key + "x"}) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_page_opens_the_stream_with_an_api_key_in_the_query(
    served: str, world: World
) -> None:
    """Browsers cannot set X-API-Key on a WebSocket or an EventSource: ``?key=`` stands in."""
    store = ApiKeyStore(world.context.sessions)
    _, key = await store.create("wall", Role.viewer, [], "root", T0_MS)
    async with connect(f"{ws_url(served)}?key={key}") as ws:
        await until_subscribers(world, 1)
        await world.alerts.note(world.incident_of[GAS_TEAM], "olga", T0_MS + 60_000, "seen",
                                max_notes=500)
        assert (await next_event(ws))["detail"] == "seen"
    async with connect(f"{ws_url(served)}?key={key}x") as ws:
        assert (await closed_with(ws))[0] == 1008
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as client:
        refused = await client.get("/api/v1/live/sse", params={"key": key + "x"})
        assert refused.status_code == 401
        async with client.stream("GET", "/api/v1/live/sse", params={"key": key}) as response:
            assert response.status_code == 200


@pytest.fixture
def access_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Open streams re-check their caller every `CHECK_S`; the subjects of the checks done
    (allowed, refused or failed) are listed in order."""
    done: list[str] = []
    still_allowed = live._still_allowed

    async def counted(users: UserStore, keys: ApiKeyStore, caller: Principal) -> bool:
        try:
            return await still_allowed(users, keys, caller)
        finally:
            done.append(caller.subject)

    monkeypatch.setattr(live, "ACCESS_CHECK_S", CHECK_S)
    monkeypatch.setattr(live, "_still_allowed", counted)
    return done


async def still_streams(ws: ClientConnection, world: World, checks: list[str]) -> None:
    """`ws` outlives three more access checks and still gets events."""
    target = len(checks) + 3
    await eventually(lambda: len(checks) >= target, "three more access checks", WAIT_S)
    await world.alerts.note(world.incident_of[GAS_TEAM], "olga", T0_MS + 60_000, "still here", 500)
    assert (await next_event(ws))["detail"] == "still here"


async def test_the_stream_is_closed_when_its_user_is_disabled(
    served: str, world: World, tmp_path: Path, access_checks: list[str]
) -> None:
    users = UserStore(world.context.sessions)
    for name, role in [("olga", Role.operator), ("vic", Role.viewer)]:
        await users.add(name, role, [], "correct horse battery", T0_MS)
    olga, vic = bearer(Role.operator, subject="olga"), bearer(Role.viewer, subject="vic")
    async with (
        connect(ws_url(served, token_of(olga))) as olgas,
        connect(ws_url(served, token_of(vic))) as vics,
    ):
        await until_subscribers(world, 2)
        args = ["users", "disable", "olga", "--state-dir", str(tmp_path),
                "--db-url", f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"]  # the API's database
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        assert result.exit_code == 0, result.output
        assert await closed_with(olgas) == (1008, "access revoked")
        await until_subscribers(world, 1)
        await still_streams(vics, world, access_checks)
    await until_subscribers(world, 0)


async def test_the_stream_is_closed_when_its_api_key_is_revoked(
    served: str, world: World, access_checks: list[str]
) -> None:
    store = ApiKeyStore(world.context.sessions)
    revoked, revoked_key = await store.create("old-board", Role.viewer, [], "root", T0_MS)
    _, kept_key = await store.create("wall-board", Role.viewer, [], "root", T0_MS)
    async with (
        connect(ws_url(served), additional_headers={"X-API-Key": revoked_key}) as old,
        connect(ws_url(served), additional_headers={"X-API-Key": kept_key}) as kept,
        httpx.AsyncClient(base_url=served, headers=bearer(Role.admin)) as http,
    ):
        await until_subscribers(world, 2)
        assert (await http.delete(f"/api/v1/api-keys/{revoked.id}")).status_code == 200
        assert await closed_with(old) == (1008, "access revoked")
        await until_subscribers(world, 1)
        await still_streams(kept, world, access_checks)
    await until_subscribers(world, 0)


async def test_a_failing_access_check_keeps_the_stream_open(
    served: str, world: World, caplog: pytest.LogCaptureFixture, access_checks: list[str]
) -> None:
    """A lookup error (here a real one: the users table is gone) proves nothing: the stream
    goes on and the check is tried again, instead of every stream dropping at once."""
    await UserStore(world.context.sessions).add("olga", Role.operator, [], "correct horse battery",
                                                T0_MS)
    async with connect(ws_url(served, token_of(bearer(Role.operator, subject="olga")))) as ws:
        await until_subscribers(world, 1)
        async with world.context.sessions.begin() as session:
            await session.execute(text("ALTER TABLE users RENAME TO users_away"))
        await still_streams(ws, world, access_checks)
        assert "re-checking live stream access of olga failed" in caplog.text
    await until_subscribers(world, 0)
