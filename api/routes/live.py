"""Live events: alert, incident and dispatch changes over a WebSocket, as JSON messages.

The access token comes as ``Authorization: Bearer …`` or, since browsers cannot set headers on
a WebSocket, as ``?token=…``; integrations may send ``X-API-Key``. It is checked by the same
dependency as every HTTP route; a refused connection is accepted and closed at once with code
1008 (policy violation) and the reason, so clients can tell it from a network failure.
A stream lives no longer than the token that opened it: when the token expires the server
closes it with 1008 and the reason "token expired", and the client reconnects with a fresh
token (an API key does not expire). While it is open the caller is looked up again every
`ACCESS_CHECK_S` seconds, and the stream is closed with 1008 and "access revoked" once the user
is disabled or the API key revoked. Responders get only the incident and dispatch events of
their own teams; other roles get all.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from contextlib import suppress

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect, status

from alerts.channels.live import Event, Subscription
from api.deps import ApiKeyStoreDep, LiveHubDep, TokensDep, UserStoreDep, authenticated
from api.problems import describe
from api.security.api_keys import ApiKeyStore, key_id_of
from api.security.principal import Principal, Role
from api.security.tokens import InvalidTokenError
from api.security.users import UserStore
from devices.clock import now_ms

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["live"])
TOKEN_EXPIRED = "token expired"
ACCESS_REVOKED = "access revoked"
ACCESS_CHECK_S = 5.0  # how often an open stream re-checks its caller: one lookup per stream


def visible(caller: Principal, event: Event) -> bool:
    if caller.role is not Role.responder:
        return True
    return "team_id" in event and caller.sees_team(event["team_id"])


@router.websocket("/live")
async def live_events(
    websocket: WebSocket, tokens: TokensDep, users: UserStoreDep, keys: ApiKeyStoreDep,
    hub: LiveHubDep, token: str | None = None,
) -> None:
    """Stream alert/incident changes the caller may see, one JSON object per message."""
    scheme, _, header_token = websocket.headers.get("authorization", "").partition(" ")
    if token is None and scheme.lower() == "bearer":
        token = header_token
    await websocket.accept()
    try:
        caller = await authenticated(
            tokens, users, keys, token or None, websocket.headers.get("x-api-key")
        )
    except (HTTPException, InvalidTokenError) as exc:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=describe(exc)[:120])
        return
    if hub is None:
        await websocket.close(status.WS_1011_INTERNAL_ERROR, reason="no live event hub")
        return
    with hub.subscribe(lambda event: visible(caller, event)) as events:
        forward = asyncio.create_task(_forward(websocket, events))
        closed = asyncio.create_task(_until_closed(websocket))
        revoked = asyncio.create_task(_until_revoked(users, keys, caller))
        tasks = {forward, closed, revoked}
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=_seconds_left(caller), return_when=FIRST_COMPLETED
            )
        finally:  # also when the server cancels this handler: no task outlives the stream
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with suppress(WebSocketDisconnect, OSError):  # the client went away mid-send
            if forward in done:
                forward.result()
            elif revoked in done:
                await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=ACCESS_REVOKED)
            elif not done:
                await websocket.close(status.WS_1008_POLICY_VIOLATION, reason=TOKEN_EXPIRED)


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


async def _forward(websocket: WebSocket, events: Subscription) -> None:
    async for event in events:
        await websocket.send_json(event)


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
