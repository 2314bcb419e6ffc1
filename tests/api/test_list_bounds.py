"""List routes refuse numbers SQL cannot hold with a 422, not a database error (500); time
filters, in epoch ms, stop at the last instant the API can show (year 9999)."""

from __future__ import annotations

import httpx
import pytest

from api.clock import EPOCH_MS_MAX
from api.security.principal import Role
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
TOO_BIG = str(2**63)


@pytest.mark.parametrize(("path", "param", "largest"), [
    ("/api/v1/incidents", "offset", 2**63 - 1),
    ("/api/v1/incidents", "since", EPOCH_MS_MAX),
    ("/api/v1/incidents", "opened_from_ms", EPOCH_MS_MAX),
    ("/api/v1/incidents", "opened_to_ms", EPOCH_MS_MAX),
    ("/api/v1/alerts", "offset", 2**63 - 1),
    ("/api/v1/alerts", "until", EPOCH_MS_MAX),
    ("/api/v1/audit", "offset", 2**63 - 1),
    ("/api/v1/audit", "since_ms", EPOCH_MS_MAX),
    ("/api/v1/audit", "until_ms", EPOCH_MS_MAX),
    ("/api/v1/devices", "offset", 2**63 - 1),
])
async def test_a_number_beyond_sql_integers_is_refused(
    client: httpx.AsyncClient, path: str, param: str, largest: int
) -> None:
    response = await client.get(path, params={param: TOO_BIG}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert param in response.text
    accepted = await client.get(path, params={param: str(largest)}, headers=ADMIN)
    assert accepted.status_code == 200, accepted.text
    if largest < 2**63 - 1:  # a time: one past the last instant shown is refused too
        beyond = await client.get(path, params={param: str(largest + 1)}, headers=ADMIN)
        assert beyond.status_code == 422 and param in beyond.text, beyond.text


async def test_an_empty_district_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/incidents", params={"district": ""}, headers=ADMIN)
    assert response.status_code == 422
