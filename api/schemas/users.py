"""People who log in: what an admin asks for, and what is shown of a user (never a hash)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.schemas.common import StrictRequestBody, epoch_ms_field, iso_twin
from api.security.principal import Role, scoped_teams
from api.security.users import MAX_NAME_LENGTH, User
from devices.names import TeamId

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; a bound keeps one login cheap


def _teams_fit_the_role(teams: list[str], info: ValidationInfo) -> list[str]:
    """Refused here, so the caller learns which field is wrong (`scoped_teams` says why)."""
    if info.data.get("role") is not None:
        scoped_teams(info.data["role"], teams)
    return teams


class UserCreate(StrictRequestBody):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["duty.lead"])
    role: Role
    teams: list[TeamId] = Field(
        default_factory=list, max_length=100, validate_default=True,
        description="a responder's teams (one or more); none for the other roles",
    )
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)

    _fit = field_validator("teams")(_teams_fit_the_role)


class UserChange(StrictRequestBody):
    """A new role (with its teams) and/or the disabled flag. A new role or disabling retires
    every token the user holds; enabling brings none back."""

    role: Role | None = None
    teams: list[TeamId] | None = Field(default=None, max_length=100)
    disabled: bool | None = None

    @field_validator("teams")
    @classmethod
    def _fit(cls, teams: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if teams is not None and info.data.get("role") is None:
            raise ValueError("give the role with the teams")
        return None if teams is None else _teams_fit_the_role(teams, info)


class PasswordChange(StrictRequestBody):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


class UserPublic(BaseModel):
    name: str
    role: Role
    teams: list[str]
    disabled: bool
    created_ms: int = epoch_ms_field("created_at")
    updated_ms: int = epoch_ms_field("updated_at")
    created_at: ClassVar[str] = iso_twin("created_ms")
    updated_at: ClassVar[str] = iso_twin("updated_ms")

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(name=user.name, role=user.role, teams=sorted(user.teams),
                   disabled=user.disabled, created_ms=user.created_ms,
                   updated_ms=user.updated_ms)
