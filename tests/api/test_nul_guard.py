"""A NUL in the path or query string is a 422 before any route runs (PostgreSQL text cannot
hold it: it used to reach SQL and come back as a 500)."""

from __future__ import annotations

import httpx
import pytest

from api.nul_guard import REFUSED
from api.security.principal import Role
from tests.api.conftest import GAS_TEAM, World
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/v1/devices/aq%00-1"),
    ("GET", "/api/v1/devices?type=air%00"),
    ("GET", "/api/v1/devices?district=%00"),
    ("GET", "/api/v1/audit?actor=root%00"),
    ("GET", "/api/v1/incidents/in%001"),
    ("POST", "/api/v1/incidents/in%001/acknowledge"),
    ("POST", "/api/v1/silences/s%001/expire"),
    ("DELETE", "/api/v1/api-keys/k%00"),
])
async def test_a_nul_is_refused_with_a_reason(client: httpx.AsyncClient, method: str, url: str
                                              ) -> None:
    response = await client.request(method, url, headers=ADMIN)
    where = "query" if "?" in url else "path"
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
        "detail": [{"loc": [where], "msg": REFUSED, "type": "value_error"}],
        "instance": url.split("?")[0],
    }


async def test_requests_without_one_pass(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/devices", params={"type": "air_quality"}, headers=ADMIN)
    assert response.status_code == 200


NUL = "NUL characters are not allowed"
GRAMMAR = "\\\\x00' at position 1 is not allowed"  # an id's grammar refuses it first


@pytest.mark.parametrize(("method", "path", "body", "reason"), [
    ("POST", "/api/v1/incidents/{gas}/notes", {"text": "a\x00b"}, NUL),
    ("POST", "/api/v1/api-keys", {"name": "board\x00", "role": "viewer"}, NUL),
    ("POST", "/api/v1/api-keys", {"name": "board", "role": "responder", "teams": ["t\x00"]},
     GRAMMAR),
    ("POST", "/api/v1/devices", {"id": "aq-9", "type": "air_quality", "district": "d\x00",
                                 "lat": 39.9, "lon": 116.4}, NUL),
])
async def test_a_nul_in_a_body_is_refused(
    client: httpx.AsyncClient, world: World, method: str, path: str, body: dict, reason: str
) -> None:
    url = path.format(gas=world.incident_of[GAS_TEAM])
    response = await client.request(method, url, json=body, headers=ADMIN)
    assert response.status_code == 422
    assert reason in response.text
