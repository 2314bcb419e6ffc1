"""FastAPI dependencies: the one place routes get their collaborators and their caller from.

Authorization lives here too: a route states who may call it with
`Depends(require(Role.admin, Role.operator))` (or the `Caller` annotation for any
authenticated principal); nothing else checks roles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from alerts.service import AlertService
from api.context import ApiContext
from api.security.api_keys import ApiKeyStore
from api.security.principal import Principal, Role
from api.security.tokens import InvalidTokenError, decode_access_token
from api.security.users import UserStore

bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an integration's key")


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def alert_service(context: ContextDep) -> AlertService:
    if context.alerts is None:
        raise HTTPException(503, "the alerts service is not running in this process")
    return context.alerts


Alerts = Annotated[AlertService, Depends(alert_service)]


def _unauthenticated(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticated(
    context: ContextDep,
    token: Annotated[str | None, Depends(bearer)],
    key: Annotated[str | None, Depends(api_key)] = None,
) -> Principal:
    """The caller, from an `X-API-Key` header or a bearer access token (401 otherwise).

    A token's user is looked up on every request, so disabling a user (from any process, e.g.
    the CLI) shuts out the tokens they already hold at once rather than when they expire.
    """
    if key is not None:
        principal = await ApiKeyStore(context.sessions).authenticate(key)
        if principal is None:
            raise _unauthenticated("invalid API key: unknown or revoked")
        return principal
    if token is None:
        raise _unauthenticated(
            "not authenticated: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'"
        )
    try:
        principal = decode_access_token(token, context.secret_key)
    except InvalidTokenError as exc:
        raise _unauthenticated(f"invalid token: {exc}") from exc
    if principal.kind == "user" and await UserStore(context.sessions).is_disabled(
        principal.subject
    ):
        raise _unauthenticated("invalid token: the user is disabled")
    return principal


def _remembered(
    connection: HTTPConnection, principal: Annotated[Principal, Depends(authenticated)]
) -> Principal:
    """Leave the caller on the connection's state, where the audit log finds it."""
    connection.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(_remembered)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only callers holding one of `roles` (403 otherwise)."""
    allowed = frozenset(roles)

    def check(caller: Caller) -> Principal:
        if caller.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {caller.role.value} may not do this; needs one of "
                + ", ".join(sorted(r.value for r in allowed)),
            )
        return caller

    return check
