"""List routes refuse numbers SQL cannot hold with a 422, not a database error (500)."""

from __future__ import annotations

import httpx
import pytest

from api.security.principal import Role
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
TOO_BIG = str(2**63)


@pytest.mark.parametrize(("path", "param"), [
    ("/api/v1/incidents", "offset"),
    ("/api/v1/incidents", "opened_from_ms"),
    ("/api/v1/incidents", "opened_to_ms"),
    ("/api/v1/alerts", "offset"),
    ("/api/v1/audit", "offset"),
    ("/api/v1/audit", "since_ms"),
    ("/api/v1/audit", "until_ms"),
    ("/api/v1/devices", "offset"),
])
async def test_a_number_beyond_sql_integers_is_refused(
    client: httpx.AsyncClient, path: str, param: str
) -> None:
    response = await client.get(path, params={param: TOO_BIG}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert param in response.text
    largest = await client.get(path, params={param: str(2**63 - 1)}, headers=ADMIN)
    assert largest.status_code == 200, largest.text


async def test_an_empty_district_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/incidents", params={"district": ""}, headers=ADMIN)
    assert response.status_code == 422
