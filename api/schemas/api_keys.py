"""API keys for integrations: what an admin asks for, and what is shown of a key."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.schemas.common import RequestBody, epoch_ms_field, iso_twin
from api.security.api_keys import ApiKey
from api.security.principal import Role, scoped_teams
from devices.names import TeamId


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200, description="what the key is for")
    role: Role
    teams: list[TeamId] = Field(
        default_factory=list, max_length=100, validate_default=True,
        description="a responder key's teams (one or more)",
    )

    @field_validator("teams")
    @classmethod
    def _fit_the_role(cls, teams: list[str], info: ValidationInfo) -> list[str]:
        """Refused here, so the caller learns which field is wrong (`scoped_teams` says why)."""
        if "role" in info.data:
            scoped_teams(info.data["role"], teams)
        return teams


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    teams: list[str]
    prefix: str = Field(description="the start of the key, to tell keys apart")
    created_by: str
    created_ms: int = epoch_ms_field("created_at")
    revoked_ms: int | None = epoch_ms_field("revoked_at", default=None)
    created_at: ClassVar[str] = iso_twin("created_ms")
    revoked_at: ClassVar[str | None] = iso_twin("revoked_ms", optional=True)

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id, name=key.name, role=key.role, teams=sorted(key.teams),
            prefix=key.prefix, created_by=key.created_by, created_ms=key.created_ms,
            revoked_ms=key.revoked_ms,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="send as 'X-API-Key: <key>'; shown only this once")
