"""Resuming the live stream over a real socket (uvicorn): ``?since=`` on the WebSocket and
``Last-Event-ID`` on SSE replay exactly the missed events in order, then live ones, without
duplicates; a pruned gap is announced; responders resume with their teams' events only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from alerts.channels.live import LiveHub
from alerts.sql import live_backlog
from alerts.sql.live_backlog import Retention
from api.live_resume import resumed, start_after
from api.routes import live
from api.schemas.live import on_the_wire
from api.security.principal import Principal, Role
from tests.api.conftest import FLOOD_TEAM, GAS_TEAM, T0_MS, World
from tests.api.test_live_api import (
    WAIT_S,
    closed_with,
    next_event,
    token_of,
    until_subscribers,
    ws_url,
)
from tests.support.auth import bearer

Event = dict[str, Any]


async def note(world: World, text: str, team: str = GAS_TEAM) -> None:
    await world.alerts.note(world.incident_of[team], "olga", T0_MS + 60_000, text, 500)


async def stored(world: World) -> list[Event]:
    """The stored events as the stream sends them."""
    return [on_the_wire(e) async for e in live_backlog.after(world.context.sessions, 0)]


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, Event]]:
    """(the ``id:`` line, the JSON data) of each event of an SSE response."""
    event_id, data = None, None
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif line == "" and data is not None:
            yield event_id, data
            event_id, data = None, None


async def test_a_websocket_resumes_with_exactly_what_it_missed(served: str, world: World) -> None:
    token = token_of(bearer(Role.operator, subject="olga"))
    async with connect(ws_url(served, token)) as ws:
        await until_subscribers(world, 1)
        await note(world, "before")
        last = await next_event(ws)
        assert last["detail"] == "before" and isinstance(last["id"], int)
    await until_subscribers(world, 0)
    for text in ("missed 1", "missed 2"):
        await note(world, text)
    async with connect(f"{ws_url(served, token)}&since={last['id']}") as ws:
        await until_subscribers(world, 1)
        missed = [await next_event(ws), await next_event(ws)]
        assert [e["detail"] for e in missed] == ["missed 1", "missed 2"]
        await note(world, "live")
        live = await next_event(ws)
        assert live["detail"] == "live"
        ids = [last["id"], *(e["id"] for e in missed), live["id"]]
        assert ids == sorted(set(ids))


async def test_replay_and_live_join_without_gap_or_duplicate(
    served: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events keep coming while the stream replays: a note is committed after each replayed
    event, so it is both in a later page of the backlog and in the live queue. Each arrives
    once, in id order."""
    read_backlog = live_backlog.after
    written = 0

    async def after_while_writing(sessions: Any, since: int) -> AsyncIterator[Event]:
        nonlocal written
        async for event in read_backlog(sessions, since):
            yield event
            if written < 20:
                written += 1
                await note(world, f"n{written}")

    monkeypatch.setattr(live_backlog, "PAGE", 2)
    monkeypatch.setattr(live_backlog, "after", after_while_writing)
    token = token_of(bearer(Role.operator, subject="olga"))
    async with connect(f"{ws_url(served, token)}&since=0") as ws:
        got: list[Event] = []
        while not got or got[-1].get("detail") != "n20":
            got.append(await next_event(ws))
        await note(world, "end")  # anything still queued comes before it
        while got[-1].get("detail") != "end":
            got.append(await next_event(ws))
    everything = [e["id"] async for e in read_backlog(world.context.sessions, 0)]
    assert [e["id"] for e in got] == everything


async def test_sse_resumes_from_last_event_id(served: str, world: World) -> None:
    operator = bearer(Role.operator, subject="olga")
    await note(world, "seen")
    await note(world, "missed")
    seen = (await stored(world))[-2]
    headers = {**operator, "Last-Event-ID": str(seen["id"])}
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http, http.stream(
        "GET", "/api/v1/live/sse", params={"since": 0}, headers=headers  # the header wins
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        event_id, missed = await anext(events)
        assert (event_id, missed) == (str(missed["id"]), (await stored(world))[-1])
        await note(world, "live")
        event_id, live = await anext(events)
        assert (event_id, live["detail"]) == (str(live["id"]), "live")
        assert live["id"] > missed["id"] > seen["id"]


async def test_sse_takes_a_query_token_and_refuses_none(served: str, world: World) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http:
        refused = await http.get("/api/v1/live/sse")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        bad = await http.get("/api/v1/live/sse", params={"since": "yesterday"},
                             headers=bearer(Role.viewer))
        assert bad.status_code == 422
        token = token_of(bearer(Role.viewer))
        async with http.stream("GET", "/api/v1/live/sse", params={"token": token}) as response:
            assert response.status_code == 200
            await until_subscribers(world, 1)
            await note(world, "hello")
            _, event = await anext(sse_events(response))
            assert event["detail"] == "hello"


async def test_a_websocket_refuses_a_bad_since(served: str, world: World) -> None:
    token = token_of(bearer(Role.operator))
    for since in ("-1", "yesterday"):
        async with connect(f"{ws_url(served, token)}&since={since}") as ws:
            assert await closed_with(ws) == (1008, live.BAD_SINCE)


async def test_a_pruned_gap_is_announced_first(served: str, world: World) -> None:
    for n in range(3):
        await note(world, f"n{n}")
    await live_backlog.prune(world.context.sessions, Retention(max_events=2), T0_MS)
    kept = await stored(world)
    assert [e["detail"] for e in kept] == ["n1", "n2"]
    token = token_of(bearer(Role.operator))
    async with connect(f"{ws_url(served, token)}&since=1") as ws:
        assert await next_event(ws) == {"type": "gap", "since": 1, "oldest": kept[0]["id"]}
        assert [await next_event(ws), await next_event(ws)] == kept
    ahead = kept[-1]["id"] + 100  # an id from another store
    async with connect(f"{ws_url(served, token)}&since={ahead}") as ws:
        assert await next_event(ws) == {"type": "gap", "since": ahead, "oldest": kept[0]["id"]}
        await until_subscribers(world, 1)
        await note(world, "after the gap")
        assert (await next_event(ws))["detail"] == "after the gap"


async def test_a_responder_resumes_with_their_teams_events_only(
    served: str, world: World
) -> None:
    await note(world, "flood note", FLOOD_TEAM)
    await note(world, "gas note", GAS_TEAM)
    mine = [e for e in await stored(world) if e.get("team_id") == GAS_TEAM]
    assert len(mine) < len(await stored(world))
    responder = bearer(Role.responder, GAS_TEAM, subject="ana")
    async with connect(f"{ws_url(served)}?since=0", additional_headers=responder) as ws:
        assert [await next_event(ws) for _ in mine] == mine
        await until_subscribers(world, 1)
        await note(world, "flood again", FLOOD_TEAM)
        await note(world, "gas again", GAS_TEAM)
        assert (await next_event(ws))["detail"] == "gas again"


async def test_a_stream_that_falls_behind_catches_up_from_the_backlog(world: World) -> None:
    """The hub drops the oldest queued events of a slow subscriber; the stream reads them
    from the backlog instead of losing them."""
    hub = LiveHub(queue_size=2)
    sessions = world.context.sessions

    async def store_and_publish(count: int) -> tuple[Event, ...]:
        async with sessions.begin() as session:
            events = await live_backlog.append(
                session, [{"type": "note", "n": n} for n in range(count)], T0_MS)
        for event in events:
            hub.publish(event)
        return events

    start = await start_after(sessions, None)
    with hub.subscribe() as live:
        stream = resumed(live, sessions, Principal("olga", Role.operator), start)
        first = await store_and_publish(1)
        assert await anext(stream) == first[0]  # now past the replay, reading live
        later = await store_and_publish(6)
        assert live.dropped == 5  # the first (also queued) and four of these
        assert [await asyncio.wait_for(anext(stream), WAIT_S) for _ in later] == list(later)
