"""Alert endpoints over a real AlertService on SQLite: filters and paging, one alert with its
history, and team scoping for responders (another team's alert is a 404)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from api.security.principal import Role
from rules.detection import Category, Severity
from tests.api.conftest import DEVICES, FLOOD_TEAM, GAS_TEAM, T0_MS, World, detection
from tests.support.auth import bearer

ADMIN = bearer(Role.admin)
VIEWER = bearer(Role.viewer)
GAS = bearer(Role.responder, GAS_TEAM)
FLOOD = bearer(Role.responder, FLOOD_TEAM)
NO_TEAM = bearer(Role.responder)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


async def devices(client: httpx.AsyncClient, headers: dict[str, str], **params: Any
                  ) -> list[str]:
    response = await client.get("/api/v1/alerts", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return [a["device_id"] for a in response.json()["items"]]


async def test_list_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    everything = ["mh-0001", "wl-0001", "gas-0001", "gas-0002"]  # newest first
    assert sorted(await devices(client, VIEWER)) == sorted(everything)
    assert (await devices(client, VIEWER))[:2] == everything[:2]
    assert await devices(client, ADMIN, severity="red") == ["gas-0001"]
    assert sorted(await devices(client, ADMIN, severity=["red", "orange"])) == [
        "gas-0001", "gas-0002"]
    assert await devices(client, ADMIN, category="flood") == ["wl-0001"]
    assert await devices(client, ADMIN, district="chaoyang") == ["mh-0001"]
    assert await devices(client, ADMIN, rule_id="water-rise") == ["wl-0001"]
    assert len(await devices(client, ADMIN, state="firing")) == 4
    assert await devices(client, ADMIN, state=["cleared", "closed"]) == []
    assert await devices(client, ADMIN, start=iso(T0_MS + 2_000)) == ["mh-0001", "wl-0001"]
    assert sorted(await devices(client, ADMIN, start=iso(T0_MS), end=iso(T0_MS + 1_000))) == [
        "gas-0001", "gas-0002"]
    page = (await client.get("/api/v1/alerts", headers=ADMIN,
                             params={"limit": 1, "offset": 1})).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 1, 1)
    assert [a["device_id"] for a in page["items"]] == ["wl-0001"]
    first = page["items"][0]
    assert (first["severity"], first["state"], first["category"], first["subject"]) == (
        "yellow", "firing", "flood", "wl-0001")


async def test_responders_list_the_alerts_of_their_teams_incidents(
    client: httpx.AsyncClient, world: World
) -> None:
    assert sorted(await devices(client, GAS)) == ["gas-0001", "gas-0002"]
    assert await devices(client, FLOOD) == ["wl-0001"]
    assert await devices(client, FLOOD, category="safety") == []
    assert await devices(client, NO_TEAM) == []


async def test_pages_count_only_what_the_caller_sees(
    client: httpx.AsyncClient, world: World
) -> None:
    async def page(headers: dict[str, str], **params: Any) -> tuple[list[str], int]:
        response = await client.get("/api/v1/alerts", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [a["device_id"] for a in response.json()["items"]], response.json()["total"]

    assert await page(ADMIN, offset=4) == ([], 4)
    assert await page(ADMIN, offset=10, limit=1000) == ([], 4)
    assert await page(GAS, limit=1, offset=1) in ((["gas-0001"], 2), (["gas-0002"], 2))
    assert await page(GAS, offset=2) == ([], 2)
    assert await page(FLOOD, district="dongcheng") == ([], 0)  # the gas team's alerts
    assert await page(FLOOD, severity="yellow") == (["wl-0001"], 1)


async def test_get_one_with_its_history(client: httpx.AsyncClient, world: World) -> None:
    later = detection(DEVICES[1], "gas-high", Category.SAFETY, T0_MS + 60_000, Severity.RED)
    await world.alerts.handle([later], T0_MS + 60_000)
    alert_id = next(a.id for a in world.alerts.open_alerts() if a.device_id == "gas-0002")
    await world.alerts.acknowledge_alert(alert_id, "olga", T0_MS + 120_000)
    response = await client.get(f"/api/v1/alerts/{alert_id}", headers=GAS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["severity"], body["incident_id"]) == (
        "acknowledged", "red", world.incident_of[GAS_TEAM])
    assert [(h["from_state"], h["to_state"], h["severity"], h["actor"]) for h in body["history"]
            ] == [(None, "firing", "orange", "engine"), ("firing", "firing", "red", "engine"),
                  ("firing", "acknowledged", "red", "olga")]
    assert [h["ts_ms"] for h in body["history"]] == [T0_MS, T0_MS + 60_000, T0_MS + 120_000]


async def test_another_teams_alert_is_404_and_no_token_is_401(
    client: httpx.AsyncClient, world: World
) -> None:
    alert_id = next(a.id for a in world.alerts.open_alerts() if a.device_id == "gas-0001")
    hidden = await client.get(f"/api/v1/alerts/{alert_id}", headers=FLOOD)
    assert hidden.status_code == 404 and alert_id in hidden.json()["detail"]
    assert (await client.get(f"/api/v1/alerts/{alert_id}", headers=VIEWER)).status_code == 200
    assert (await client.get(f"/api/v1/alerts/{alert_id}")).status_code == 401
    assert (await client.get("/api/v1/alerts")).status_code == 401
    missing = await client.get("/api/v1/alerts/al-nope", headers=ADMIN)
    assert missing.status_code == 404 and "al-nope" in missing.json()["detail"]


async def test_bad_filters_are_422(client: httpx.AsyncClient, world: World) -> None:
    for params in (
        {"start": "2026-11-19T00:00:00Z", "end": "2026-11-18T00:00:00Z"},
        {"start": "2026-11-18T00:00:00Z", "end": "2026-11-18T00:00:00Z"},
        {"start": "2026-11-18T00:00:00"},  # no time zone
        {"severity": "purple"},
        {"state": "asleep"},
        {"category": "weather"},
        {"limit": 0},
        {"offset": -1},
    ):
        response = await client.get("/api/v1/alerts", headers=ADMIN, params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"], params
