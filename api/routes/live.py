"""Live events: alert, incident and dispatch changes over a WebSocket or Server-Sent Events.

Both carry the same JSON events (`api.schemas.live`), each with an ``id``. A client that
reconnects with the last id it saw (``?since=ID``; on SSE the browser's ``Last-Event-ID``
header, which wins over ``since``) first gets the events it missed, from a bounded backlog,
then live ones (`api.live_resume`); when the backlog no longer reaches back to ``ID`` a
``gap`` event comes first. Without ``since`` the stream starts with the next event.

The access token comes as ``Authorization: Bearer …`` or, since browsers cannot set headers on
a WebSocket or an EventSource, as ``?token=…``; integrations may send ``X-API-Key``, and a page
holding an API key (the wall screen's read-only key) ``?key=…``. It is
checked by the same dependency as every HTTP route. A refused WebSocket is accepted and closed
at once with code 1008 (policy violation) and the reason, so clients can tell it from a network
failure; a refused SSE request is a 401 problem. A stream lives no longer than the token that
opened it: when the token expires the server ends it (WebSocket: 1008 "token expired"; SSE: a
``closed`` event with that reason), and the client reconnects with a fresh token and
``since`` (an API key does not expire). While it is open the caller is looked up again every
`ACCESS_CHECK_S` seconds, and the stream is ended with "access revoked" once the user is
disabled or the API key revoked. One user or API key holds a bounded number of streams at once
(`api.stream_slots`): one more is a 429 problem on SSE and a 1008 close on the WebSocket.
Responders get only the incident and dispatch events of their
own teams; other roles get all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated, Any

import anyio
from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Query,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.sse import EventSourceResponse, ServerSentEvent

from alerts.channels.live import Event, LiveHub
from api.deps import (
    AlertsPartDep,
    ApiKeyStoreDep,
    LiveHubDep,
    LiveStreamsDep,
    SessionsDep,
    TokensDep,
    UserStoreDep,
    api_key,
    authenticated,
    bearer,
)
from api.live_resume import Sessions, resumed, start_after, visible
from api.problems import describe
from api.schemas.live import LiveEvent, on_the_wire
from api.schemas.problems import Problem
from api.security.api_keys import ApiKeyStore, key_id_of
from api.security.principal import Principal
from api.security.tokens import InvalidTokenError
from api.security.users import UserStore
from api.stream_slots import TooManyStreams
from devices.clock import now_ms

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["live"])
TOKEN_EXPIRED = "token expired"
ACCESS_REVOKED = "access revoked"
BAD_SINCE = "since must be the id of an event (a whole number >= 0)"
ACCESS_CHECK_S = 5.0  # how often an open stream re-checks its caller: one lookup per stream
Since = Annotated[int | None, Query(ge=0, description="resume after this event id")]
QueryToken = Annotated[str | None, Query(description="an access token, for browsers")]
QueryKey = Annotated[
    str | None, Query(alias="key", description="an API key, for browsers (X-API-Key wins)")
]


@router.websocket("/live")
async def live_events(
    websocket: WebSocket, tokens: TokensDep, users: UserStoreDep, keys: ApiKeyStoreDep,
    hub: LiveHubDep, sessions: SessionsDep, slots: LiveStreamsDep, token: QueryToken = None,
    key: QueryKey = None,
    since: str | None = None,
) -> None:
    """Stream alert/incident changes the caller may see, one JSON object per message."""
    scheme, _, header_token = websocket.headers.get("authorization", "").partition(" ")
    if token is None and scheme.lower() == "bearer":
        token = header_token
    await websocket.accept()
    try:
        caller = await authenticated(
            tokens, users, keys, token or None, websocket.headers.get("x-api-key") or key or None
        )
    except (HTTPException, InvalidTokenError) as exc:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=describe(exc)[:120])
        return
    if hub is None:
        await websocket.close(status.WS_1011_INTERNAL_ERROR, reason="no live event hub")
        return
    if since is not None and not since.isdecimal():  # refused after accept, as the others are
        await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=BAD_SINCE)
        return
    try:
        with slots.hold(caller):
            await _serve(websocket, caller, users, keys, hub, sessions, since)
    except TooManyStreams as exc:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=describe(exc)[:120])


async def _serve(
    websocket: WebSocket, caller: Principal, users: UserStore, keys: ApiKeyStore, hub: LiveHub,
    sessions: Sessions, since: str | None,
) -> None:
    after = await start_after(sessions, None if since is None else int(since))
    with hub.subscribe(lambda event: visible(caller, event)) as live:
        forward = asyncio.create_task(_forward(websocket, resumed(live, sessions, caller, after)))
        closed = asyncio.create_task(_until_closed(websocket))
        ended = asyncio.create_task(_until_ended(users, keys, caller))
        tasks = {forward, closed, ended}
        try:
            done, _ = await asyncio.wait(tasks, return_when=FIRST_COMPLETED)
        finally:  # also when the server cancels this handler: no task outlives the stream
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with suppress(WebSocketDisconnect, OSError):  # the client went away mid-send
            if forward in done:
                forward.result()
            elif ended in done:
                await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=ended.result())


async def _stream_caller(
    tokens: TokensDep, users: UserStoreDep, keys: ApiKeyStoreDep,
    header_token: Annotated[str | None, Depends(bearer)],
    key: Annotated[str | None, Depends(api_key)], token: QueryToken = None,
    query_key: QueryKey = None,
) -> Principal:
    """The caller, as `authenticated` finds it, also from ``?token=`` or ``?key=`` (EventSource
    sends no headers); a dependency, so a refusal is a 401 before the stream starts."""
    return await authenticated(tokens, users, keys, token or header_token, key or query_key)


async def _stream_slot(
    caller: Annotated[Principal, Depends(_stream_caller)], slots: LiveStreamsDep
) -> AsyncIterator[Principal]:
    """The caller, holding one of its stream slots while the stream lasts (429 when it has
    none left, before the stream starts)."""
    with slots.hold(caller):
        yield caller


@router.get(
    "/live/sse", response_class=EventSourceResponse,
    responses={429: {"model": Problem, "description": "the caller has too many open streams"}},
)
async def live_event_source(
    caller: Annotated[Principal, Depends(_stream_slot)], users: UserStoreDep,
    keys: ApiKeyStoreDep, part: AlertsPartDep, sessions: SessionsDep, since: Since = None,
    last_event_id: Annotated[int | None, Header(ge=0, description="set by EventSource")] = None,
) -> AsyncIterator[LiveEvent]:
    """Stream alert/incident changes the caller may see as Server-Sent Events with ids."""
    after = await start_after(sessions, since if last_event_id is None else last_event_id)
    with part.hub.subscribe(lambda event: visible(caller, event)) as live:
        ended = asyncio.create_task(_until_ended(users, keys, caller))
        try:
            # closed here, not left to the garbage collector: it may hold a SQL connection
            async with contextlib.aclosing(resumed(live, sessions, caller, after)) as events:
                async for event in _until(events, ended):
                    yield _message(event)
            yield _message({"type": "closed", "reason": ended.result()})
        finally:
            ended.cancel()


def _message(event: Event) -> Any:
    """`event` with its SSE ``id:`` line (typed Any: the route's annotation documents the data)."""
    event_id = event.get("id")
    return ServerSentEvent(data=on_the_wire(event), id=None if event_id is None else str(event_id))


async def _until(events: AsyncIterator[Event], ended: asyncio.Task[str]) -> AsyncIterator[Event]:
    """`events` until `ended` is done."""
    while True:
        following = asyncio.ensure_future(anext(events))
        try:
            done, _ = await asyncio.wait({following, ended}, return_when=FIRST_COMPLETED)
        finally:
            following.cancel()  # a no-op once it is done
            # let it finish before anyone closes `events` (the stream's task group may be
            # cancelling us: shielded, or every await here would be cancelled again)
            with anyio.CancelScope(shield=True):
                await asyncio.wait({following})
        if following not in done:
            return
        try:
            event = following.result()
        except StopAsyncIteration:
            return
        yield event


async def _until_ended(users: UserStore, keys: ApiKeyStore, caller: Principal) -> str:
    """Why the caller's stream must end, once it must: its token expired or access revoked."""
    try:
        await asyncio.wait_for(_until_revoked(users, keys, caller), _seconds_left(caller))
    except TimeoutError:
        return TOKEN_EXPIRED
    return ACCESS_REVOKED


def _seconds_left(caller: Principal) -> float | None:
    """How long the caller's credential stays valid; None when it does not expire."""
    if caller.expires_at_s is None:
        return None
    return max(0.0, caller.expires_at_s - now_ms() / 1000)


async def _until_revoked(users: UserStore, keys: ApiKeyStore, caller: Principal) -> None:
    """Return once the caller's user is disabled, deleted or has a new password, or its API
    key is revoked.

    A lookup that fails (the database restarting, a full pool) proves nothing either way:
    it is logged and tried again, rather than dropping every open stream at once.
    """
    while True:
        await asyncio.sleep(ACCESS_CHECK_S)
        try:
            if not await _still_allowed(users, keys, caller):
                return
        except Exception:  # any database error: the stream goes on
            log.warning("re-checking live stream access of %s failed; retrying in %g s",
                        caller.subject, ACCESS_CHECK_S, exc_info=True)


async def _still_allowed(users: UserStore, keys: ApiKeyStore, caller: Principal) -> bool:
    if caller.kind == "api_key":
        return await keys.is_active(key_id_of(caller))
    return await users.token_refusal(caller) is None


async def _forward(websocket: WebSocket, events: AsyncIterator[Event]) -> None:
    async for event in events:
        await websocket.send_json(on_the_wire(event))


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
