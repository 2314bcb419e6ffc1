"""Every state-changing request that got past authentication goes into the audit log.

A pure ASGI middleware, so routes do nothing for it: after the response it reads the caller
that `api.deps` left on the request state, the matched route's template and the status, and
writes who, what (method, route, status), when and from where. Requests without a caller
(401s, the public pages) are not recorded; a login records the user it let in.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import ApiContext
from api.security.audit_log import record_request
from api.security.principal import Principal
from devices.clock import now_ms

log = logging.getLogger(__name__)
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGING:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        status = 500  # unless a response starts

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            principal = state.get("principal")
            if isinstance(principal, Principal):
                await self._record(scope, principal, status)

    async def _record(self, scope: Scope, principal: Principal, status: int) -> None:
        template = getattr(scope.get("route"), "path", None)  # set by routing, if it matched
        client = scope.get("client")
        context: ApiContext = scope["app"].state.context
        try:
            await record_request(
                context.sessions, ts_ms=now_ms(),
                actor=principal.subject, method=scope["method"], path=scope["path"],
                route=template if isinstance(template, str) else scope["path"], status=status,
                address=client[0] if client else None,
            )
        except Exception:  # the response is already out; say loudly that it went unrecorded
            log.exception("audit: could not record %s %s by %s", scope["method"],
                          scope["path"], principal.subject)
