"""Short-lived signed access tokens (JWT, HS256) carrying a principal."""

from __future__ import annotations

import jwt

from api.security.principal import Principal, Role

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"


class InvalidTokenError(Exception):
    """The token is malformed, forged, expired or not an access token."""


def issue_access_token(principal: Principal, secret: str, now_s: int, ttl_s: int) -> str:
    claims: dict[str, object] = {
        "sub": principal.subject,
        "role": principal.role.value,
        "teams": sorted(principal.teams),
        "kind": principal.kind,
        "typ": ACCESS_TOKEN_TYPE,
        "iat": now_s,
        "exp": now_s + ttl_s,
    }
    if principal.generation is not None:
        claims["gen"] = principal.generation
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "role"]}
        )
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidTokenError("not an access token")
        return Principal(
            subject=str(claims["sub"]),
            role=Role(claims["role"]),
            teams=frozenset(str(t) for t in claims.get("teams", [])),
            kind="api_key" if claims.get("kind") == "api_key" else "user",
            expires_at_s=int(claims["exp"]),
            generation=None if claims.get("gen") is None else int(claims["gen"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidTokenError(str(exc)) from exc
