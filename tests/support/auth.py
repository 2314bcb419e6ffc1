"""Access tokens for API tests: a header for a principal of any role (test secret)."""

from __future__ import annotations

import time

from api.security.principal import Principal, Role
from api.security.tokens import issue_access_token

SECRET = "test-secret-" + "x" * 32
TTL_S = 24 * 3600  # minted when a test module is imported, which may be long before its tests run


def bearer(role: Role, *teams: str, subject: str | None = None, secret: str = SECRET
           ) -> dict[str, str]:
    principal = Principal(subject or f"{role.value}-user", role, frozenset(teams))
    token = issue_access_token(principal, secret, int(time.time()), ttl_s=TTL_S)
    return {"Authorization": f"Bearer {token}"}
