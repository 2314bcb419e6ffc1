"""Logging in: the OAuth2 password flow, refresh-token rotation, and who the caller is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.context import ApiContext
from api.deps import Caller, ContextDep
from api.schemas import Problem, RequestBody
from api.security.refresh import InvalidRefreshTokenError, RefreshTokens
from api.security.tokens import issue_access_token
from api.security.users import User, UserStore
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
BAD_CREDENTIALS = "invalid username or password"
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "wrong credentials or refresh token"}
}


class TokenResponse(BaseModel):
    access_token: str = Field(description="JWT for 'Authorization: Bearer …'")
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str = Field(description="single use: exchange at /api/v1/auth/refresh")


class RefreshRequest(RequestBody):
    refresh_token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    subject: str
    role: str
    teams: list[str]
    kind: str


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def _tokens(context: ApiContext, user: User, now_s: float) -> TokenResponse:
    access = issue_access_token(
        user.principal, context.secret_key, int(now_s), context.access_token_ttl_s
    )
    refresh = await RefreshTokens(context.sessions).issue(
        user.name, int(now_s * 1000), context.refresh_token_ttl_s
    )
    return TokenResponse(
        access_token=access, expires_in=context.access_token_ttl_s, refresh_token=refresh
    )


@router.post(
    "/token",
    summary="Log in with a user name and password (OAuth2 password flow)",
    responses={
        **UNAUTHORIZED,
        429: {"model": Problem, "description": "too many failed logins; see Retry-After"},
    },
)
async def login(
    request: Request,
    context: ContextDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenResponse:
    ms = now_ms()
    now = ms / 1000
    address = request.client.host if request.client else "unknown"
    throttle = context.login_throttle
    wait_s = throttle.retry_after(form.username, address, now)
    if wait_s > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed logins; try again in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    user = await UserStore(context.sessions).authenticate(
        form.username, form.password, ms
    )
    if user is None:
        throttle.failed(form.username, address, now)
        raise _unauthorized(BAD_CREDENTIALS)
    throttle.succeeded(form.username)
    request.state.principal = user.principal  # the audit log records who logged in
    return await _tokens(context, user, now)


@router.post(
    "/refresh",
    summary="Exchange a refresh token for new tokens (the old one is used up)",
    responses=UNAUTHORIZED,
)
async def refresh(request: Request, body: RefreshRequest, context: ContextDep) -> TokenResponse:
    ms = now_ms()
    now = ms / 1000
    try:
        name = await RefreshTokens(context.sessions).redeem(body.refresh_token, ms)
    except InvalidRefreshTokenError as exc:
        raise _unauthorized(f"invalid refresh token: {exc}") from exc
    user = await UserStore(context.sessions).get(name)
    if user is None or user.disabled:
        raise _unauthorized("invalid refresh token: the user is gone or disabled")
    request.state.principal = user.principal
    return await _tokens(context, user, now)


@router.get("/me", summary="Who the caller is: subject, role, teams")
async def me(caller: Caller) -> Me:
    return Me(
        subject=caller.subject, role=caller.role.value, teams=sorted(caller.teams),
        kind=caller.kind,
    )
