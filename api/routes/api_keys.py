"""API keys for integrations: created, listed and revoked by admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from api.deps import ApiKeyStoreDep, require
from api.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from api.schemas.problems import Problem
from api.security.principal import Principal, Role
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])
Admin = Annotated[Principal, Depends(require(Role.admin))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such API key"}
}


@router.post(
    "",
    summary="Create an API key scoped to a role (the key is shown once)",
    status_code=status.HTTP_201_CREATED,
)
async def create_api_key(
    body: ApiKeyCreate, caller: Admin, keys: ApiKeyStoreDep
) -> ApiKeyCreated:
    record, key = await keys.create(body.name, body.role, body.teams, caller.subject, now_ms())
    return ApiKeyCreated(**ApiKeyPublic.of(record).model_dump(), key=key)


@router.get("", summary="List API keys (never the keys themselves)")
async def list_api_keys(_caller: Admin, keys: ApiKeyStoreDep) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in await keys.list()]


@router.delete("/{key_id}", summary="Revoke an API key at once", responses=NOT_FOUND)
async def revoke_api_key(key_id: str, _caller: Admin, keys: ApiKeyStoreDep) -> ApiKeyPublic:
    revoked = await keys.revoke(key_id, now_ms())
    if revoked is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no API key {key_id!r}")
    return ApiKeyPublic.of(revoked)
