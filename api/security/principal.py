"""A caller of the API and the roles it may hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    admin = "admin"
    operator = "operator"  # operations center
    responder = "responder"  # member of one or more field teams
    viewer = "viewer"


@dataclass(frozen=True)
class Principal:
    """An authenticated user or API key; `teams` scopes a responder's incidents."""

    subject: str
    role: Role
    teams: frozenset[str] = field(default_factory=frozenset)
    kind: Literal["user", "api_key"] = "user"

    def sees_team(self, team_id: str | None) -> bool:
        """Responders see their own teams' work only; every other role sees all of it."""
        return self.role is not Role.responder or (team_id is not None and team_id in self.teams)
