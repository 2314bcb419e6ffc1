"""API keys for integrations: created, listed and revoked by admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from api.deps import ContextDep, require
from api.schemas import Problem, RequestBody
from api.security.api_keys import ApiKey, ApiKeyStore
from api.security.principal import Principal, Role, ScopeError
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])
Admin = Annotated[Principal, Depends(require(Role.admin))]


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200, description="what the key is for")
    role: Role
    teams: list[str] = Field(
        default_factory=list, max_length=100, description="a responder key's teams (one or more)"
    )


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    teams: list[str]
    prefix: str = Field(description="the start of the key, to tell keys apart")
    created_by: str
    created_ms: int
    revoked_ms: int | None = None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id, name=key.name, role=key.role, teams=sorted(key.teams),
            prefix=key.prefix, created_by=key.created_by, created_ms=key.created_ms,
            revoked_ms=key.revoked_ms,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="send as 'X-API-Key: <key>'; shown only this once")


@router.post(
    "",
    summary="Create an API key scoped to a role (the key is shown once)",
    status_code=status.HTTP_201_CREATED,
)
async def create_api_key(body: ApiKeyCreate, context: ContextDep, caller: Admin) -> ApiKeyCreated:
    try:
        record, key = await ApiKeyStore(context.sessions).create(
            body.name, body.role, body.teams, caller.subject, now_ms()
        )
    except ScopeError as exc:  # shaped like a validation error: the field and why
        problem = {"loc": ["body", "teams"], "msg": str(exc), "type": "value_error"}
        raise HTTPException(422, detail=[problem]) from exc
    return ApiKeyCreated(**ApiKeyPublic.of(record).model_dump(), key=key)


@router.get("", summary="List API keys (never the keys themselves)")
async def list_api_keys(context: ContextDep, _caller: Admin) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in await ApiKeyStore(context.sessions).list()]


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such API key"}
}


@router.delete("/{key_id}", summary="Revoke an API key at once", responses=NOT_FOUND)
async def revoke_api_key(key_id: str, context: ContextDep, _caller: Admin) -> ApiKeyPublic:
    revoked = await ApiKeyStore(context.sessions).revoke(key_id, now_ms())
    if revoked is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no API key {key_id!r}")
    return ApiKeyPublic.of(revoked)
