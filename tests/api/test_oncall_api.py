"""GET /api/v1/teams/{team}/oncall: who is on duty now, for admins, over a routing file with
on-call schedules (the documented example) and the platform's real `Alerting`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alerts.decisions.oncall import on_duty
from api.app import create_app
from api.context import AlertsPart
from api.security.principal import Role
from devices.catalogue import load_catalogue
from devices.clock import now_ms
from devices.registry import Registry
from ingest.config import MqttConfig
from tests.api.conftest import DEVICES, World
from tests.support.auth import bearer
from urbanwatch.alerting import Alerting
from urbanwatch.settings import AlertsSettings

EXAMPLE = Path(__file__).parents[2] / "docs" / "routing-oncall.example.yaml"
ZONE = "Asia/Shanghai"


@pytest.fixture
async def http(world: World) -> AsyncIterator[tuple[httpx.AsyncClient, Alerting]]:
    registry = Registry.build(load_catalogue(), DEVICES)
    alerting = Alerting(  # its MQTT channel is never started: nothing is dispatched here
        world.context.sessions, lambda: registry, MqttConfig("127.0.0.1", 9, "oncall-test"),
        AlertsSettings(routing_path=EXAMPLE),
    )
    context = dataclasses.replace(
        world.context, timezone=ZONE,
        alerts=AlertsPart(alerting.service, alerting.hub, alerting.reload_routing),
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, alerting


async def test_admins_read_who_is_on_duty_now(http) -> None:
    client, alerting = http
    before = now_ms()
    response = await client.get("/api/v1/teams/gas-emergency/oncall", headers=bearer(Role.admin))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["team_id"] == "gas-emergency" and body["timezone"] == ZONE
    assert body["at_ms"] >= before
    [lead] = body["schedules"]
    _, team = alerting.service.routing.team("gas-emergency")
    expected = on_duty(team.oncall[0], body["at_ms"], ZONE)
    member = team.member(expected)
    assert lead == {"schedule": "lead", "member_id": expected, "name": member.name,
                    "email": member.email, "phone": member.phone, "override": False}


@pytest.mark.parametrize(("role", "team", "status"), [
    (Role.operator, "gas-emergency", 403),
    (Role.responder, "gas-emergency", 403),
    (Role.admin, "no-such-team", 404),
], ids=["operator", "responder", "unknown-team"])
async def test_only_admins_and_only_known_teams(http, role, team, status) -> None:
    client, _ = http
    response = await client.get(f"/api/v1/teams/{team}/oncall",
                                headers=bearer(role, "gas-emergency"))
    assert response.status_code == status, response.text
    if status == 404:
        assert "no team 'no-such-team'" in response.json()["detail"]


async def test_another_teams_schedules_are_its_own(http) -> None:
    client, _ = http
    response = await client.get("/api/v1/teams/ecc-duty/oncall", headers=bearer(Role.admin))
    assert [s["schedule"] for s in response.json()["schedules"]] == ["chief"]


async def test_the_routing_shows_each_policys_steps(http) -> None:
    client, _ = http
    response = await client.get("/api/v1/routing", headers=bearer(Role.viewer))
    gas = next(p for p in response.json()["policies"] if p["id"] == "gas")
    assert [(s["after_s"], s["notify"][0]) for s in gas["steps"]] == [
        (0, {"channel": "email", "to": "lead"}), (300, {"channel": "sms", "to": "lead"}),
        (900, {"channel": "voice", "to": "ecc-duty/chief"})]
