"""Refuse a NUL character in a request's path or query string (422; 1008 for a WebSocket).

PostgreSQL text cannot hold NUL, so such a value would reach SQL as an id or a filter and
fail there as a database error (a 500). No id, name or filter of this API contains one, so
one check at the edge covers every route, present and future.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem

REFUSED = "NUL characters are not allowed in the path or query string"


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = _nul_in(scope) if scope["type"] in ("http", "websocket") else None
        if where is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":  # shaped like FastAPI's own 422
            error = {"loc": [where], "msg": REFUSED, "type": "value_error"}
            await problem(422, [error], _printable(scope["path"]))(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": REFUSED})


def _nul_in(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if "\x00" in scope["path"]:
        return "path"
    return "query" if b"%00" in query or b"\x00" in query else None


def _printable(path: str) -> str:
    return path.replace("\x00", "%00")
