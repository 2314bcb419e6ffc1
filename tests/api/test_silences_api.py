"""Silence endpoints over a real AlertService: create (one-off and weekly), list, expire; who may
write; invalid silences are 422; and a created silence really keeps a new alert from
dispatching."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from alerts.model import IncidentState
from api.app import create_app
from api.security.principal import Role
from rules.detection import Category, Severity
from tests.api.conftest import DEVICES, T0_MS, World, detection
from tests.support.auth import bearer

OPERATOR = bearer(Role.operator, subject="olga")
URL = "/api/v1/silences"
ONE_OFF = {
    "matchers": [{"field": "district", "value": "dongcheng"}, {"field": "category",
                                                                "value": "safety"}],
    "starts_at": "2026-11-18T00:00:00Z",
    "ends_at": "2026-11-19T00:00:00+08:00",
    "reason": "gas main works",
}  # fmt: skip
WEEKLY = {
    "matchers": [{"field": "device", "value": "wl-0001"}],
    "starts_at": "2026-11-01T00:00:00Z",
    "weekly": {"weekdays": [6], "start": "02:00", "end": "04:00", "tz": "Asia/Shanghai"},
    "reason": "weekly calibration",
}


async def test_create_list_and_expire(client: httpx.AsyncClient) -> None:
    created = await client.post(URL, headers=OPERATOR, json=ONE_OFF)
    assert created.status_code == 201, created.text
    one_off = created.json()
    assert one_off["author"] == "olga" and one_off["reason"] == "gas main works"
    assert (one_off["starts_ms"], one_off["ends_ms"]) == (1_794_960_000_000, 1_795_017_600_000)
    assert one_off["weekly"] is None and len(one_off["matchers"]) == 2
    weekly = await client.post(URL, headers=bearer(Role.admin, subject="root"), json=WEEKLY)
    assert weekly.status_code == 201, weekly.text
    assert weekly.json()["weekly"] == {"weekdays": [6], "start": "02:00:00", "end": "04:00:00",
                                       "tz": "Asia/Shanghai"}  # fmt: skip
    assert weekly.json()["ends_ms"] is None and weekly.json()["author"] == "root"

    listed = await client.get(URL, headers=bearer(Role.viewer))
    assert listed.status_code == 200
    assert {s["id"] for s in listed.json()} == {one_off["id"], weekly.json()["id"]}

    expired = await client.post(f"{URL}/{one_off['id']}/expire", headers=OPERATOR)
    assert expired.status_code == 204
    assert [s["id"] for s in (await client.get(URL, headers=OPERATOR)).json()] == [
        weekly.json()["id"]]
    everything = await client.get(URL, headers=OPERATOR, params={"include_expired": True})
    assert len(everything.json()) == 2
    again = await client.post(f"{URL}/{one_off['id']}/expire", headers=OPERATOR)
    assert again.status_code == 404 and one_off["id"] in again.json()["detail"]


async def test_a_silence_keeps_new_alerts_from_dispatching(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"matchers": [{"field": "rule", "value": "fire-smoke"}],
            "starts_at": "2026-11-17T00:00:00Z", "ends_at": "2026-11-20T00:00:00Z",
            "reason": "drill"}  # fmt: skip
    assert (await client.post(URL, headers=OPERATOR, json=body)).status_code == 201
    fire = detection(DEVICES[3], "fire-smoke", Category.FIRE, T0_MS + 60_000)
    outcome = await world.alerts.handle([fire], T0_MS + 60_000)
    assert [t.suppressed_by for t in outcome.transitions] == [
        f"silence:{(await world.alerts.silences())[0].id}"]
    opened = [i for i in await world.alerts.incidents() if i.category is Category.FIRE]
    assert opened == [] and not outcome.notified
    assert all(i.state is not IncidentState.NEW for i in await world.alerts.incidents())


async def test_matchers_by_device_type_and_severity_with_negation_and_regex(
    client: httpx.AsyncClient, world: World
) -> None:
    matchers = [{"field": "device_type", "op": "=~", "value": "manhole|water_.*"},
                {"field": "severity", "op": "!=", "value": "red"}]  # fmt: skip
    body = {"matchers": matchers, "starts_at": "2026-11-17T00:00:00Z",
            "ends_at": "2026-11-20T00:00:00Z", "reason": "street works"}  # fmt: skip
    created = await client.post(URL, headers=OPERATOR, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["matchers"] == matchers
    listed = (await client.get(URL, headers=OPERATOR)).json()
    assert listed[0]["matchers"] == matchers
    silence = f"silence:{created.json()['id']}"
    at = T0_MS + 60_000
    yellow = detection(DEVICES[2], "water-high", Category.FLOOD, at, Severity.YELLOW)
    red = detection(DEVICES[2], "water-severe", Category.FLOOD, at, Severity.RED)
    gas = detection(DEVICES[1], "gas-leak-2", Category.SAFETY, at, Severity.ORANGE)
    outcome = await world.alerts.handle([yellow, red, gas], at)
    muted = {t.alert.rule_id: t.suppressed_by for t in outcome.transitions}
    assert muted == {"water-high": silence, "water-severe": None, "gas-leak-2": None}


@pytest.mark.parametrize(
    ("matcher", "reason"),
    [
        ({"field": "rule", "op": "=~", "value": "gas-("}, "invalid regular expression"),
        ({"field": "rule", "op": "=~", "value": "a" * 257}, "at most 256"),
        ({"field": "severity", "value": "purple"}, "unknown severity"),
        ({"field": "device", "op": "==", "value": "gas-0001"}, "'=~'"),
        ({"field": "device", "op": "!=", "value": "gas-0001"}, "does not match an empty value"),
    ],
    ids=["bad-regex", "long-regex", "bad-severity", "bad-op", "only-negative"],
)
async def test_invalid_matchers_are_422(
    client: httpx.AsyncClient, matcher: dict[str, str], reason: str
) -> None:
    response = await client.post(URL, headers=OPERATOR, json={**ONE_OFF, "matchers": [matcher]})
    assert response.status_code == 422, response.text
    assert reason in str(response.json()["detail"])
    assert (await client.get(URL, headers=OPERATOR)).json() == []


@pytest.mark.parametrize("role", [Role.viewer, Role.responder])
async def test_only_the_operations_center_writes(client: httpx.AsyncClient, role: Role) -> None:
    headers = bearer(role, "gas-emergency")
    assert (await client.post(URL, headers=headers, json=ONE_OFF)).status_code == 403
    assert (await client.post(f"{URL}/sil-x/expire", headers=headers)).status_code == 403
    assert (await client.get(URL, headers=OPERATOR)).json() == []
    assert (await client.post(URL, json=ONE_OFF)).status_code == 401


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ends_at": "2026-11-17T00:00:00Z"}, "ends before it starts"),
        ({"ends_at": None}, "needs an end"),
        ({"matchers": []}, "at least 1"),
        ({"matchers": [{"field": "colour", "value": "red"}]}, "device"),
        ({"starts_at": "2026-11-18T00:00:00"}, "time zone"),
        ({"reason": ""}, "at least 1"),
        ({"weekly": {"weekdays": [7], "start": "02:00", "end": "04:00", "tz": "UTC"}},
         "weekdays"),
        ({"weekly": {"weekdays": [0], "start": "02:00", "end": "04:00", "tz": "Mars/Base"}},
         "time zone"),
        ({"weekly": {"weekdays": [0], "start": "02:00+01:00", "end": "04:00", "tz": "UTC"}},
         "wall-clock"),
        ({"author": "mallory"}, "Extra inputs"),
    ],
    ids=["reversed", "one-off-without-end", "no-matchers", "unknown-field", "naive-start",
         "no-reason", "bad-weekday", "bad-zone", "offset-time", "author-is-the-caller"],
)  # fmt: skip
async def test_invalid_silences_are_422(
    client: httpx.AsyncClient, change: dict[str, object], reason: str
) -> None:
    response = await client.post(URL, headers=OPERATOR, json={**ONE_OFF, **change})
    assert response.status_code == 422, response.text
    assert reason in str(response.json()["detail"])
    assert (await client.get(URL, headers=OPERATOR)).json() == []


async def test_a_weekly_window_without_a_zone_is_in_the_city_s_zone(world: World) -> None:
    context = dataclasses.replace(world.context, timezone="Europe/Berlin")
    body = {**WEEKLY, "weekly": {"weekdays": [6], "start": "02:00", "end": "04:00"}}
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        created = await http.post(URL, headers=OPERATOR, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["weekly"]["tz"] == "Europe/Berlin"
