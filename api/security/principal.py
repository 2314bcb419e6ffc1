"""A caller of the API and the roles it may hold."""

from __future__ import annotations

from collections.abc import Iterable
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
    """An authenticated user or API key; `teams` scopes a responder's incidents.

    `expires_at_s` is when the credential it came with lapses (epoch seconds; None for an API
    key, valid until revoked) and `generation` the user's token generation it was issued at
    (`api.security.users`; None: a token that carries none); neither is part of who the caller
    is, so they are not compared.
    """

    subject: str
    role: Role
    teams: frozenset[str] = field(default_factory=frozenset)
    kind: Literal["user", "api_key"] = "user"
    expires_at_s: int | None = field(default=None, compare=False)
    generation: int | None = field(default=None, compare=False)

    def sees_team(self, team_id: str | None) -> bool:
        """Responders see their own teams' work only; every other role sees all of it."""
        return self.role is not Role.responder or (team_id is not None and team_id in self.teams)

    @property
    def visible_teams(self) -> frozenset[str] | None:
        """The teams whose work this caller sees, None for all (the rule of `sees_team`)."""
        return self.teams if self.role is Role.responder else None


class ScopeError(ValueError):
    """A role and a set of teams that do not fit together."""


def scoped_teams(role: Role, teams: Iterable[str]) -> frozenset[str]:
    """The teams a principal of `role` is scoped to: one or more for a responder, none for the
    other roles (they see every team's work, so a team would suggest a limit that is not there)."""
    cleaned = frozenset(t.strip() for t in teams)
    if any(not t for t in cleaned):
        raise ScopeError("team names must not be empty")
    if role is Role.responder and not cleaned:
        raise ScopeError("a responder needs at least one team")
    if role is not Role.responder and cleaned:
        raise ScopeError(f"only responders belong to teams, not role {role.value}")
    return cleaned
