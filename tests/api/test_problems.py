"""Every error of the API is RFC 9457 problem details, its status from the one table of
`api.problems`; the OpenAPI document says so."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from api.app import create_app
from api.problems import BLANK, KINDS, PROBLEM_JSON, TYPE_PREFIX, kind_of
from api.security.principal import Role
from devices.errors import InvalidDeviceError, RegistryError, UnknownDeviceError
from ingest.timeseries.client import InfluxClient
from tests.api.conftest import DEVICES, GAS_TEAM, World
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
MEMBERS = {"type", "title", "status", "detail", "instance"}


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert set(body) >= MEMBERS and body["status"] == status
    assert body["instance"] == response.request.url.path
    return body


def test_the_most_specific_class_wins() -> None:
    class Subclass(UnknownDeviceError):
        pass

    assert kind_of(Subclass("d")) is KINDS[UnknownDeviceError]
    assert kind_of(InvalidDeviceError("bad")) is KINDS[RegistryError]
    assert kind_of(RuntimeError("no entry")) is None


async def test_a_domain_error_has_its_own_type_and_title(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/api/v1/devices/nope", headers=ADMIN),
                     await client.post("/api/v1/devices/nope/retire", headers=ADMIN)):
        body = problem(response, 404)
        assert body["type"] == f"{TYPE_PREFIX}unknown-device"
        assert (body["title"], body["detail"]) == ("No such device", "no device 'nope'")


async def test_an_http_refusal_is_a_plain_problem(client: httpx.AsyncClient) -> None:
    body = problem(await client.delete("/api/v1/api-keys/nope", headers=ADMIN), 404)
    assert (body["type"], body["title"]) == (BLANK, "Not Found")
    assert body["detail"] == "no API key 'nope'"


async def test_another_teams_incident_is_unknown_to_a_responder(world: World,
                                                                 client: httpx.AsyncClient) -> None:
    flood = world.incident_of["drainage-crew"]
    hidden = await client.get(f"/api/v1/incidents/{flood}", headers=bearer(Role.responder,
                                                                           GAS_TEAM))
    missing = await client.get("/api/v1/incidents/in-nope", headers=ADMIN)
    for response in (hidden, missing):
        assert problem(response, 404)["type"] == f"{TYPE_PREFIX}unknown-incident"


async def test_a_malformed_request_keeps_fastapis_list_as_detail(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/alerts", params={"limit": "many"}, headers=ADMIN)
    [error] = problem(response, 422)["detail"]
    assert error["loc"] == ["query", "limit"] and error["msg"]


async def test_a_401_names_the_scheme(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/api/v1/auth/me"), 401)
    assert "not authenticated" in body["detail"]
    assert problem(await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer x"}),
                   401)["type"] == f"{TYPE_PREFIX}invalid-token"
    response = await client.get("/api/v1/auth/me")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_influxdb_out_of_reach_is_a_502(world: World) -> None:
    unreachable = InfluxClient("http://127.0.0.1:9", "nowhere")  # the discard port: refused
    app = create_app(dataclasses.replace(world.context, influx=unreachable))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as http:
            response = await http.get(f"/api/v1/devices/{DEVICES[0].id}/latest", headers=ADMIN)
    finally:
        await unreachable.aclose()
    body = problem(response, 502)
    assert body["type"] == f"{TYPE_PREFIX}influxdb-failed" and "InfluxDB" in body["detail"]


async def test_an_unexpected_error_is_a_500_that_tells_nothing(world: World) -> None:
    app = create_app(world.context)

    async def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        body = problem(await http.get("/broken"), 500)
    assert "secret" not in body["detail"] and body["title"] == "Internal Server Error"


@pytest.mark.parametrize(("path", "method", "status", "media_type"), [
    ("/api/v1/devices/{device_id}", "get", "404", PROBLEM_JSON),
    ("/api/v1/devices/{device_id}", "get", "422", PROBLEM_JSON),
    ("/api/v1/rules", "post", "422", PROBLEM_JSON),
    ("/api/v1/routing/reload", "post", "422", PROBLEM_JSON),
    ("/readyz", "get", "503", "application/json"),  # a readiness report, not a problem
])
def test_the_openapi_document_declares_problem_responses(
    world: World, path: str, method: str, status: str, media_type: str
) -> None:
    responses = create_app(world.context).openapi()["paths"][path][method]["responses"]
    assert list(responses[status]["content"]) == [media_type]
