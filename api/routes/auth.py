"""Logging in: the OAuth2 password flow, refresh-token rotation, and who the caller is.

Every failed login is in the audit log (name tried, reason, address); the throttle
(`api.security.ratelimit`) counts an attempt before its password is checked.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from api.context import TokenPolicy
from api.deps import (
    Caller,
    LoginThrottleDep,
    RefreshTokensDep,
    SessionsDep,
    TokensDep,
    UserStoreDep,
)
from api.schemas.auth import Me, RefreshRequest, TokenResponse
from api.schemas.problems import Problem
from api.security.audit_log import record_failed_login
from api.security.passwords import PasswordPoolBusyError
from api.security.refresh import RefreshTokens
from api.security.tokens import issue_access_token
from api.security.users import LoginRefusedError, User
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
BAD_CREDENTIALS = "invalid username or password"
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "wrong credentials or refresh token"}
}


async def _tokens(
    policy: TokenPolicy, refresh_tokens: RefreshTokens, user: User, now_s: float
) -> TokenResponse:
    access = issue_access_token(user.principal, policy.secret_key, int(now_s), policy.access_ttl_s)
    refresh = await refresh_tokens.issue(user.name, int(now_s * 1000), policy.refresh_ttl_s)
    return TokenResponse(
        access_token=access, expires_in=policy.access_ttl_s, refresh_token=refresh
    )


@router.post(
    "/token",
    summary="Log in with a user name and password (OAuth2 password flow)",
    responses={
        **UNAUTHORIZED,
        429: {"model": Problem, "description": "too many failed logins; see Retry-After"},
        503: {"model": Problem, "description": "too many logins at once; see Retry-After"},
    },
)
async def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    policy: TokensDep,
    throttle: LoginThrottleDep,
    users: UserStoreDep,
    refresh_tokens: RefreshTokensDep,
    sessions: SessionsDep,
) -> TokenResponse:
    ms = now_ms()
    now = ms / 1000
    address = request.client.host if request.client else "unknown"

    async def refused(
        reason: str, code: int, detail: str, wait_s: int | None = None
    ) -> HTTPException:
        """The answer, once the failed login is in the audit log."""
        await record_failed_login(sessions, ts_ms=ms, name=form.username, reason=reason,
                                  address=address, route=request.url.path, status=code)
        headers = None if wait_s is None else {"Retry-After": str(wait_s)}
        return HTTPException(code, detail=detail, headers=headers)

    wait_s = throttle.admit(form.username, address, now)  # counted from here on
    if wait_s > 0:
        raise await refused("throttled", status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many failed logins; try again in {wait_s} s", wait_s)
    try:
        user = await users.authenticate(form.username, form.password, ms)
    except PasswordPoolBusyError as busy:
        throttle.withdraw(form.username, address, now)
        raise await refused("not checked: password pool busy",
                            status.HTTP_503_SERVICE_UNAVAILABLE, str(busy), 1) from None
    except LoginRefusedError as why:
        await asyncio.sleep(throttle.failed(form.username, now))
        raise await refused(str(why), status.HTTP_401_UNAUTHORIZED, BAD_CREDENTIALS) from None
    throttle.succeeded(form.username, address, now)
    request.state.principal = user.principal  # the audit log records who logged in
    return await _tokens(policy, refresh_tokens, user, now)


@router.post(
    "/refresh",
    summary="Exchange a refresh token for new tokens (the old one is used up)",
    responses=UNAUTHORIZED,
)
async def refresh_token(
    request: Request,
    body: RefreshRequest,
    policy: TokensDep,
    users: UserStoreDep,
    refresh_tokens: RefreshTokensDep,
) -> TokenResponse:
    ms = now_ms()
    name = await refresh_tokens.redeem(body.refresh_token, ms)
    user = await users.get(name)
    if user is None or user.disabled:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid refresh token: the user is gone or disabled"
        )
    request.state.principal = user.principal
    return await _tokens(policy, refresh_tokens, user, ms / 1000)


@router.get("/me", summary="Who the caller is: subject, role, teams")
async def get_me(caller: Caller) -> Me:
    return Me(
        subject=caller.subject, role=caller.role.value, teams=sorted(caller.teams),
        kind=caller.kind,
    )
