"""Access tokens: a principal survives the round trip; forged, expired or foreign tokens do not."""

from __future__ import annotations

import jwt
import pytest

from api.security.principal import Principal, Role
from api.security.tokens import InvalidTokenError, decode_access_token, issue_access_token

SECRET = "s" * 40
RESPONDER = Principal("li.wei", Role.responder, frozenset({"gas-north", "gas-south"}))


def test_round_trip_keeps_role_and_teams() -> None:
    token = issue_access_token(RESPONDER, SECRET, now_s=1_700_000_000, ttl_s=10**9)
    assert decode_access_token(token, SECRET) == RESPONDER


@pytest.mark.parametrize(
    "token",
    [
        issue_access_token(RESPONDER, "another-secret" * 3, now_s=1_700_000_000, ttl_s=10**9),
        issue_access_token(RESPONDER, SECRET, now_s=1_000_000_000, ttl_s=60),  # long expired
        jwt.encode({"sub": "x", "role": "admin", "exp": 4_000_000_000, "typ": "refresh"}, SECRET),
        jwt.encode({"sub": "x", "role": "root", "exp": 4_000_000_000, "typ": "access"}, SECRET),
        "not-a-jwt",
    ],
    ids=["forged", "expired", "refresh-token", "unknown-role", "garbage"],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        decode_access_token(token, SECRET)


@pytest.mark.parametrize(
    ("principal", "team", "sees"),
    [
        (RESPONDER, "gas-north", True),
        (RESPONDER, "fire-east", False),
        (RESPONDER, None, False),
        (Principal("ops", Role.operator), "fire-east", True),
        (Principal("v", Role.viewer), None, True),
    ],
)
def test_team_scope(principal: Principal, team: str | None, sees: bool) -> None:
    assert principal.sees_team(team) is sees
