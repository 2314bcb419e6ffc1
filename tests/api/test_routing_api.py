"""Routing endpoints over the platform's real `Alerting` and a routing file on disk: read it
(webhook URLs whole for admins only), reload it (admins only), and an invalid file refused
with its problems, the old routing kept."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.channels.webhook import redacted_url
from api.app import create_app
from api.context import AlertsPart
from api.security.principal import Role
from devices.catalogue import load_catalogue
from devices.registry import Registry
from ingest.config import MqttConfig
from tests.api.conftest import DEVICES, GAS_TEAM, World
from tests.support.auth import bearer
from urbanwatch.alerting import Alerting
from urbanwatch.settings import AlertsSettings

ADMIN = bearer(Role.admin)
SHIPPED = files("alerts").joinpath("data/routing.yaml").read_text()


@dataclasses.dataclass
class Routing:
    http: httpx.AsyncClient
    path: Path


@pytest.fixture
async def routing(world: World, tmp_path: Path) -> AsyncIterator[Routing]:
    path = tmp_path / "routing.yaml"
    path.write_text(SHIPPED)
    registry = Registry.build(load_catalogue(), DEVICES)
    alerting = Alerting(  # its MQTT channel is never started: nothing is dispatched here
        world.context.sessions, lambda: registry, MqttConfig("127.0.0.1", 9, "routing-test"),
        AlertsSettings(routing_path=path),
    )
    context = dataclasses.replace(
        world.context, alerts=AlertsPart(alerting.service, alerting.hub, alerting.reload_routing)
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Routing(http, path)


async def red_deadline(http: httpx.AsyncClient) -> int:
    response = await http.get("/api/v1/routing", headers=bearer(Role.viewer))
    assert response.status_code == 200, response.text
    standard = next(p for p in response.json()["policies"] if p["id"] == "standard")
    return int(standard["ack_deadline_s"]["red"])


async def test_every_role_reads_the_routing(routing: Routing) -> None:
    for role in Role:
        response = await routing.http.get("/api/v1/routing", headers=bearer(role, GAS_TEAM))
        assert response.status_code == 200
    body = response.json()
    gas = next(h for h in body["handlers"] if h["id"] == "gas-company")
    assert gas["categories"] == ["safety"] and GAS_TEAM in [t["id"] for t in gas["teams"]]
    catch_all = body["routes"][-1]
    assert (catch_all["handler"], catch_all["match"]["min_severity"]) == (
        "emergency-command", "info")
    assert await red_deadline(routing.http) == 300
    assert (await routing.http.get("/api/v1/routing")).status_code == 401


async def test_reload_puts_the_edited_file_in_force(routing: Routing) -> None:
    routing.path.write_text(SHIPPED.replace("{red: 300, orange: 900", "{red: 120, orange: 900"))
    response = await routing.http.post("/api/v1/routing/reload", headers=ADMIN)
    assert response.status_code == 200, response.text
    standard = next(p for p in response.json()["policies"] if p["id"] == "standard")
    assert standard["ack_deadline_s"]["red"] == 120
    assert await red_deadline(routing.http) == 120


async def test_an_invalid_file_is_422_with_its_problems_and_the_old_routing_stays(
    routing: Routing,
) -> None:
    routing.path.write_text(SHIPPED.replace("levels: [ecc-duty]", "levels: [nobody]")
                            .replace("{red: 300, orange: 900", "{red: 60, orange: 900"))
    response = await routing.http.post("/api/v1/routing/reload", headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["source"] == str(routing.path)
    assert any("nobody" in p for p in problem["problems"]) and "nobody" in problem["detail"]
    assert await red_deadline(routing.http) == 300
    routing.path.write_text("routes: [")
    broken = await routing.http.post("/api/v1/routing/reload", headers=ADMIN)
    assert broken.status_code == 422 and broken.json()["problems"]


async def test_only_admins_reload(routing: Routing) -> None:
    for role in (Role.operator, Role.responder, Role.viewer):
        response = await routing.http.post("/api/v1/routing/reload", headers=bearer(role))
        assert response.status_code == 403, role
    assert (await routing.http.post("/api/v1/routing/reload")).status_code == 401


async def test_reload_without_the_alerts_service_is_503(world: World) -> None:
    app = create_app(dataclasses.replace(world.context, alerts=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        response = await http.post("/api/v1/routing/reload", headers=ADMIN)
    assert response.status_code == 503 and "alerts service" in response.json()["detail"]


SECRET_HOOK = "https://ops:hunter2@hooks.example.org:8443/services/T0/B0/s3cr3t?token=abc"
WITH_WEBHOOK = SHIPPED.replace(
    "        name: Gas emergency repair team\n        channels: [{type: mqtt}]",
    "        name: Gas emergency repair team\n        channels: [{type: mqtt}, "
    f"{{type: webhook, url: '{SECRET_HOOK}', secret_env: GAS_HOOK_SECRET}}]",
)


def gas_channels(body: dict[str, Any]) -> list[dict[str, Any]]:
    gas = next(h for h in body["handlers"] if h["id"] == "gas-company")
    team = next(t for t in gas["teams"] if t["id"] == GAS_TEAM)
    channels: list[dict[str, Any]] = team["channels"]
    return channels


async def test_only_admins_see_webhook_urls_whole(routing: Routing) -> None:
    assert WITH_WEBHOOK != SHIPPED
    routing.path.write_text(WITH_WEBHOOK)
    assert (await routing.http.post("/api/v1/routing/reload", headers=ADMIN)).status_code == 200
    admin = await routing.http.get("/api/v1/routing", headers=ADMIN)
    assert admin.status_code == 200
    assert [c["target"] for c in gas_channels(admin.json())] == [None, SECRET_HOOK]
    for role in (Role.operator, Role.responder, Role.viewer):
        response = await routing.http.get("/api/v1/routing", headers=bearer(role, GAS_TEAM))
        assert response.status_code == 200, role
        assert [(c["type"], c["target"]) for c in gas_channels(response.json())] == [
            ("mqtt", None), ("webhook", "https://hooks.example.org/…")], role
        for secret in ("hunter2", "s3cr3t", "token=abc", "ops:"):
            assert secret not in response.text, (role, secret)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.org/services/T0/B0/XYZ", "https://hooks.example.org/…"),
        ("http://user:pw@10.0.0.7:8080/hook?key=k", "http://10.0.0.7/…"),
        ("https://[2001:db8::1]/hook", "https://[2001:db8::1]/…"),
        ("https://receiver.example", "https://receiver.example/…"),
        ("https://user:pass/word@host/x", "…"),  # malformed user info: no host is trusted
        ("http://[not-ipv6/x", "…"),
    ],
    ids=["path-secret", "user-info-port-query", "ipv6", "no-path", "slash-in-user-info",
         "broken-host"],
)
def test_redacted_url_keeps_only_scheme_and_host(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


async def test_an_admin_gives_a_team_an_mqtt_login_shown_once(routing: Routing) -> None:
    url = "/api/v1/routing/teams/gas-emergency/mqtt-login"
    response = await routing.http.post(url, headers=ADMIN)
    assert response.status_code == 201, response.text
    login = response.json()
    assert login["username"] == "urbanwatch.team.gas-emergency" and len(login["password"]) >= 32
    assert login["subscribe"] == "dispatch/gas-emergency/#"
    again = (await routing.http.post(url, headers=ADMIN)).json()
    assert again["password"] != login["password"]  # a new login replaces the old one


@pytest.mark.parametrize(("team", "status"), [("nobody", 404), ("gas emergency", 404)])
async def test_a_login_for_no_team_is_404(routing: Routing, team: str, status: int) -> None:
    response = await routing.http.post(f"/api/v1/routing/teams/{team}/mqtt-login", headers=ADMIN)
    assert response.status_code == status and "no team" in response.json()["detail"]


async def test_only_admins_issue_team_logins(routing: Routing) -> None:
    url = "/api/v1/routing/teams/gas-emergency/mqtt-login"
    response = await routing.http.post(url, headers=bearer(Role.operator))
    assert response.status_code == 403
