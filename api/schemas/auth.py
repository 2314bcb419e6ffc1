"""Logging in: tokens, their refresh, and who the caller is."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import RequestBody


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
