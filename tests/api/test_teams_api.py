"""Teams managed through the API, over the platform's real `Alerting` and a routing file on disk
(the example with people and on-call schedules): every write edits the file in place (its
comments stay), is validated whole, put in force and audited; refusals name their reasons."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.sql.team_logins import TeamLogins
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

ADMIN = bearer(Role.admin, subject="root")
EXAMPLE = (Path(__file__).parents[2] / "docs" / "routing-oncall.example.yaml").read_text()
NOTE = "# dashboard and MQTT get every dispatch at once"
LEAD_NOTE = "# the last one listed wins where they overlap"
OVERRIDES = "/api/v1/teams/gas-emergency/oncall/lead/overrides"
NIGHT = {"handler": "gas-company", "name": "Gas night crew", "channels": [{"type": "mqtt"}],
         "members": [{"id": "ma.lin", "name": "Ma Lin", "phone": "+8613800000009"}],
         "oncall": [{"id": "lead", "rotation": {"members": ["ma.lin"]}}]}  # fmt: skip


@dataclasses.dataclass
class Teams:
    http: httpx.AsyncClient
    path: Path
    sessions: async_sessionmaker[AsyncSession]


async def client(world: World, path: Path | None) -> AsyncIterator[Teams]:
    registry = Registry.build(load_catalogue(), DEVICES)
    alerting = Alerting(  # its MQTT channel is never started: nothing is dispatched here
        world.context.sessions, lambda: registry, MqttConfig("127.0.0.1", 9, "teams-test"),
        AlertsSettings(routing_path=path),
    )
    part = AlertsPart(alerting.service, alerting.hub, alerting.reload_routing, path)
    transport = httpx.ASGITransport(app=create_app(dataclasses.replace(world.context, alerts=part)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Teams(http, path or Path(), world.context.sessions)


@pytest.fixture
async def teams(world: World, tmp_path: Path) -> AsyncIterator[Teams]:
    path = tmp_path / "routing.yaml"
    path.write_text(EXAMPLE)
    async for found in client(world, path):
        yield found


async def in_force(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/api/v1/routing", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {t["id"]: t for h in response.json()["handlers"] for t in h["teams"]}


async def audited(http: httpx.AsyncClient) -> list[tuple[str, str, int]]:
    items = (await http.get("/api/v1/audit", headers=ADMIN)).json()["items"]
    return [(i["action"], i["route"], i["status"]) for i in items if i["actor"] == "root"]


async def test_teams_are_listed_with_members_and_schedules(teams: Teams) -> None:
    response = await teams.http.get("/api/v1/teams", headers=ADMIN)
    assert response.status_code == 200, response.text
    found = {t["id"]: t for t in response.json()}
    assert set(found) == {"gas-emergency", "ecc-duty"}
    gas = found["gas-emergency"]
    assert gas["handler"] == "gas-company" and gas["channels"][0]["type"] == "mqtt"
    assert gas["members"][0] == {"id": "li.wei", "name": "Li Wei",
                                 "email": "li.wei@gas.example.org", "phone": "+8613800000001"}
    lead = gas["oncall"][0]
    assert lead["rotation"] == {"members": ["li.wei", "wang.fang", "zhao.lei"],
                                "handoff_day": "monday", "handoff_time": "09:00",
                                "length_weeks": 1, "start": "2026-01-05"}
    # local city time (Asia/Shanghai, +08:00) in the file, RFC 3339 in UTC on the wire
    assert lead["overrides"] == [{"index": 0, "member": "zhao.lei",
                                  "start": "2026-12-24T10:00:00.000Z",
                                  "end": "2026-12-26T01:00:00.000Z"}]


async def test_contacts_are_for_admins_only(teams: Teams) -> None:
    for role in (Role.operator, Role.responder, Role.viewer):
        response = await teams.http.get("/api/v1/teams/gas-emergency", headers=bearer(role))
        assert response.status_code == 200
        members = response.json()["members"]
        assert members and all(m["email"] is None and m["phone"] is None for m in members)
    assert (await teams.http.get("/api/v1/teams/nobody", headers=ADMIN)).status_code == 404


async def test_a_new_team_is_written_keeping_the_comments_and_put_in_force(teams: Teams) -> None:
    response = await teams.http.put("/api/v1/teams/gas-night", headers=ADMIN, json=NIGHT)
    assert response.status_code == 200, response.text
    assert response.json()["members"][0]["phone"] == "+8613800000009"
    text = teams.path.read_text()
    assert NOTE in text and LEAD_NOTE in text and "gas-night" in text
    assert "gas-night" in await in_force(teams.http)
    assert ("PUT", "/api/v1/teams/{team_id}", 200) in await audited(teams.http)


async def test_a_team_is_replaced_field_by_field(teams: Teams) -> None:
    gas = (await teams.http.get("/api/v1/teams/gas-emergency", headers=ADMIN)).json()
    body = {"handler": "gas-company", "name": "Gas emergency repair (renamed)",
            "channels": [{"type": "mqtt"}], "members": gas["members"],
            "oncall": [{"id": "lead", "rotation": {"members": ["li.wei", "wang.fang", "zhao.lei"],
                                                   "start": "2026-01-05"}}]}  # fmt: skip
    response = await teams.http.put("/api/v1/teams/gas-emergency", headers=ADMIN, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["oncall"][0]["overrides"] == []
    text = teams.path.read_text()
    assert "name: Gas emergency repair (renamed)" in text and NOTE in text
    assert (await in_force(teams.http))["gas-emergency"]["name"].endswith("(renamed)")


async def test_a_bad_phone_is_422_at_its_line_and_nothing_changes(teams: Teams) -> None:
    bad = {**NIGHT, "members": [{"id": "ma.lin", "name": "Ma Lin", "phone": "13800000009"}]}
    response = await teams.http.put("/api/v1/teams/gas-night", headers=ADMIN, json=bad)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p.startswith("line ") and ", column " in p and "members.0.phone" in p
               and "E.164" in p for p in problems), problems
    assert teams.path.read_text() == EXAMPLE
    assert "gas-night" not in await in_force(teams.http)


async def test_an_unknown_handler_or_a_bad_id_is_refused(teams: Teams) -> None:
    unknown = await teams.http.put("/api/v1/teams/gas-night", headers=ADMIN,
                                   json={**NIGHT, "handler": "nobody"})
    assert unknown.status_code == 404 and "handler 'nobody'" in unknown.json()["detail"]
    bad_id = await teams.http.put("/api/v1/teams/gas%20night", headers=ADMIN, json=NIGHT)
    assert bad_id.status_code == 422
    assert teams.path.read_text() == EXAMPLE


async def test_a_team_still_referenced_is_not_removed(teams: Teams) -> None:
    routed = await teams.http.delete("/api/v1/teams/gas-emergency", headers=ADMIN)
    assert routed.status_code == 409
    assert routed.json()["references"] == ["route 0"]
    paged = await teams.http.delete("/api/v1/teams/ecc-duty", headers=ADMIN)
    assert paged.status_code == 409
    assert paged.json()["references"] == ["route 1", "step 2 of policy gas"]
    assert teams.path.read_text() == EXAMPLE


async def test_an_unreferenced_team_is_removed(teams: Teams) -> None:
    assert (await teams.http.put("/api/v1/teams/gas-night", headers=ADMIN,
                                 json=NIGHT)).status_code == 200
    login = await teams.http.post("/api/v1/routing/teams/gas-night/mqtt-login", headers=ADMIN)
    assert login.status_code == 201, login.text
    response = await teams.http.delete("/api/v1/teams/gas-night", headers=ADMIN)
    assert response.status_code == 204, response.text
    assert await TeamLogins(teams.sessions).users() == []  # its MQTT login went with it
    assert teams.path.read_text() == EXAMPLE  # what the put added goes, and only that
    assert "gas-night" not in await in_force(teams.http)
    gone = await teams.http.delete("/api/v1/teams/gas-night", headers=ADMIN)
    assert gone.status_code == 404


async def test_an_override_covers_now_and_is_removed_again(teams: Teams) -> None:
    now = now_ms()
    cover = {"member": "wang.fang", "start": now - 3_600_000, "end": "2999-01-01T00:00:00+08:00"}
    response = await teams.http.post(OVERRIDES, headers=ADMIN, json=cover)
    assert response.status_code == 201, response.text
    added = response.json()["overrides"][-1]
    assert added["index"] == 1 and added["end"] == "2998-12-31T16:00:00.000Z"
    text = teams.path.read_text()
    assert LEAD_NOTE in text and "member: wang.fang" in text
    duty = (await teams.http.get("/api/v1/teams/gas-emergency/oncall", headers=ADMIN)).json()
    assert duty["schedules"][0]["member_id"] == "wang.fang" and duty["schedules"][0]["override"]
    removed = await teams.http.delete(f"{OVERRIDES}/1", headers=ADMIN)
    assert removed.status_code == 204
    assert teams.path.read_text() == EXAMPLE
    assert (await teams.http.delete(f"{OVERRIDES}/5", headers=ADMIN)).status_code == 404
    routes = {route for _, route, _ in await audited(teams.http)}
    assert {"/api/v1/teams/{team_id}/oncall/{schedule_id}/overrides",
            "/api/v1/teams/{team_id}/oncall/{schedule_id}/overrides/{index}"} <= routes


async def test_override_times_follow_the_api_convention(teams: Teams) -> None:
    naive = {"member": "wang.fang", "start": "2026-12-01T08:00", "end": "2026-12-02T08:00"}
    response = await teams.http.post(OVERRIDES, headers=ADMIN, json=naive)
    assert response.status_code == 422 and "time zone" in response.text
    stranger = {"member": "nobody", "start": "2026-12-01T00:00Z", "end": "2026-12-02T00:00Z"}
    response = await teams.http.post(OVERRIDES, headers=ADMIN, json=stranger)
    assert response.status_code == 422 and "nobody" in response.json()["detail"]
    unknown = await teams.http.post("/api/v1/teams/gas-emergency/oncall/chief/overrides",
                                    headers=ADMIN, json={**stranger, "member": "li.wei"})
    assert unknown.status_code == 404
    edge = {"member": "wang.fang", "start": "2026-12-01T00:00Z", "end": "9999-12-31T23:59:59Z"}
    response = await teams.http.post(OVERRIDES, headers=ADMIN, json=edge)  # no local date
    assert response.status_code in (409, 422) and "out of range" in response.text
    assert teams.path.read_text() == EXAMPLE


async def test_only_admins_write(teams: Teams) -> None:
    for role in (Role.operator, Role.responder, Role.viewer):
        headers = bearer(role, "gas-emergency")
        assert (await teams.http.put("/api/v1/teams/gas-night", headers=headers,
                                     json=NIGHT)).status_code == 403
        assert (await teams.http.delete("/api/v1/teams/gas-night",
                                        headers=headers)).status_code == 403
        assert (await teams.http.post(OVERRIDES, headers=headers, json={})).status_code == 403
    assert teams.path.read_text() == EXAMPLE


async def test_the_shipped_routing_is_read_only(world: World) -> None:
    async for shipped in client(world, None):
        listed = await shipped.http.get("/api/v1/teams", headers=ADMIN)
        assert listed.status_code == 200 and len(listed.json()) > 5
        response = await shipped.http.put("/api/v1/teams/gas-night", headers=ADMIN, json=NIGHT)
        assert response.status_code == 409
        assert "routing_path" in response.json()["detail"]
        delete = await shipped.http.delete("/api/v1/teams/env-enforcement", headers=ADMIN)
        assert delete.status_code == 409 and "routing_path" in delete.json()["detail"]
