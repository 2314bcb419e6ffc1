"""Refuse a request body above a size limit (413), or one that arrives too slowly (408),
before anything reads it whole.

Installed outermost, so it runs before authentication and routing: a declared
``Content-Length`` above the limit is answered at once, without reading a byte of the body;
a body sent without one (chunked) is counted as it streams and cut off at the limit, so no
parser (JSON, forms, YAML in a JSON string, a device import) ever holds more than the limit.
Some paths (the device import) have a larger limit of their own. A body must also have arrived
whole within `read_timeout_s` of the request's start, so a client trickling bytes cannot hold
a connection and a parser's buffer for as long as it likes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit; answered as any 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large(limit))


class BodyTooSlow(HTTPException):
    """Raised from `receive` when the body has not arrived within the time allowed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(HTTPStatus.REQUEST_TIMEOUT, f"the request body did not arrive within "
                         f"{timeout_s:g} s, this server's limit; send it faster")


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, this server's limit; send less"


class BodyLimit:
    def __init__(self, app: ASGIApp, default_bytes: int, by_path: Mapping[str, int],
                 read_timeout_s: float = 60.0) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.by_path = by_path  # paths with a limit of their own
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.default_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large(limit),
                          scope["path"])(scope, receive, send)
            return
        received, deadline = 0, time.monotonic() + self.read_timeout_s

        async def counted() -> Message:
            nonlocal received
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.read_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None
