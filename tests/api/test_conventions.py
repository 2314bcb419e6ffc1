"""The API's conventions against the real app and its SQL database: timestamps in RFC 3339 out
and RFC 3339 or epoch ms in (no naive ones), ``since``/``until`` on every time filter with the
old names as deprecated aliases, and cursor paging of alerts, incidents and audit that stays
stable while rows are inserted between pages."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from api.clock import iso_time
from api.security.principal import Role
from rules.detection import Category, Severity
from tests.api.conftest import DEVICES, T0_MS, World, detection
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
SHANGHAI = timezone(timedelta(hours=8))


def iso_at(ms: int, zone: timezone = UTC) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).isoformat()


def parsed(text: str) -> int:
    """Epoch ms of an RFC 3339 text the API sent, checking it says UTC with a Z."""
    assert text.endswith("Z"), text
    return round(datetime.fromisoformat(text).timestamp() * 1000)


LISTS = {  # path → (the time the filters use, items' epoch-ms key, its RFC 3339 twin)
    "/api/v1/alerts": ("started_ms", "started_at", ("start", "end")),
    "/api/v1/incidents": ("opened_ms", "opened_at", ("opened_from_ms", "opened_to_ms")),
}


async def items(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(path, headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


@pytest.mark.parametrize("path", list(LISTS))
async def test_times_go_out_in_rfc3339_beside_epoch_ms(
    client: httpx.AsyncClient, path: str
) -> None:
    ms_key, iso_key, _ = LISTS[path]
    found = await items(client, path)
    assert found
    for item in found:
        assert parsed(item[iso_key]) == item[ms_key]


async def test_an_incident_timeline_is_in_rfc3339(client: httpx.AsyncClient, world: World) -> None:
    [incident_id, *_] = world.incident_of.values()
    body = (await client.get(f"/api/v1/incidents/{incident_id}", headers=ADMIN)).json()
    assert [parsed(e["at"]) for e in body["timeline"]] == [e["ts_ms"] for e in body["timeline"]]
    assert body["acknowledged_at"] is None and body["acknowledged_ms"] is None
    assert parsed(body["updated_at"]) == body["updated_ms"]


@pytest.mark.parametrize("path", list(LISTS))
async def test_since_and_until_take_rfc3339_with_any_offset_or_epoch_ms(
    client: httpx.AsyncClient, path: str
) -> None:
    ms_key, _, (old_since, old_until) = LISTS[path]
    every = [i[ms_key] for i in await items(client, path)]
    since, until = T0_MS + 1_000, T0_MS + 3_000
    expected = [ms for ms in every if since <= ms < until]
    assert expected and expected != every
    forms = [
        {"since": iso_at(since), "until": iso_at(until)},
        {"since": iso_at(since, SHANGHAI), "until": iso_at(until, SHANGHAI)},
        {"since": since, "until": until},
        {"since": iso_time(since), "until": until},
        {old_since: since, old_until: iso_at(until, SHANGHAI)},  # the deprecated names
    ]
    for form in forms:
        assert [i[ms_key] for i in await items(client, path, **form)] == expected, form


AUDIT_T0 = 1_700_000_000_000


async def test_audit_since_and_until(client: httpx.AsyncClient, world: World) -> None:
    for n in range(3):
        await client.post("/api/v1/api-keys", headers=ADMIN,
                          json={"name": f"k{n}", "role": "viewer"})
    times = [e["ts_ms"] for e in await items(client, "/api/v1/audit")]
    assert len(times) >= 3 and all(parsed(e["at"]) == e["ts_ms"]
                                   for e in await items(client, "/api/v1/audit"))
    oldest = min(times)
    for form in ({"since": oldest + 1}, {"since": iso_time(oldest + 1)},
                 {"since_ms": oldest + 1}, {"since_ms": iso_at(oldest + 1, SHANGHAI)}):
        assert [e["ts_ms"] for e in await items(client, "/api/v1/audit", **form)] == [
            t for t in times if t > oldest], form
    assert await items(client, "/api/v1/audit", until=iso_time(oldest)) == []
    assert await items(client, "/api/v1/audit", since=AUDIT_T0, until=AUDIT_T0 + 1) == []


async def test_readings_and_reports_echo_their_range_in_rfc3339(
    client: httpx.AsyncClient,
) -> None:
    since, until = T0_MS - 60_000, T0_MS + 3_600_000
    readings = await client.get("/api/v1/devices/wl-0001/readings", headers=ADMIN, params={
        "metric": "level_m", "since": iso_at(since, SHANGHAI), "until": until})
    assert readings.status_code == 200, readings.text
    body = readings.json()
    assert (body["since"], body["until"]) == (iso_time(since), iso_time(until))
    assert (body["start_ms"], body["end_ms"]) == (since, until)
    old = await client.get("/api/v1/devices/wl-0001/readings", headers=ADMIN, params={
        "metric": "level_m", "start": iso_time(since), "end": iso_time(until)})
    assert old.json()["since"] == body["since"]
    report = await client.get("/api/v1/reports", headers=ADMIN, params={
        "since": since, "until": iso_at(until, SHANGHAI)})
    assert report.status_code == 200, report.text
    assert (report.json()["since"], report.json()["until"]) == (iso_time(since), iso_time(until))
    old = await client.get("/api/v1/reports", headers=ADMIN,
                           params={"start": iso_time(since), "end": iso_time(until)})
    assert old.json()["rows"] == report.json()["rows"]
    missing = await client.get("/api/v1/reports", headers=ADMIN, params={"since": since})
    assert missing.status_code == 422 and "until" in missing.text


async def test_backtest_takes_since_and_until(client: httpx.AsyncClient) -> None:
    url = "/api/v1/rules/backtest"
    since, until = T0_MS, T0_MS + 3_600_000
    for window in ({"since": iso_at(since, SHANGHAI), "until": until},
                   {"start": since, "end": iso_time(until)}):
        response = await client.post(url, headers=ADMIN, json={"rule_ids": ["aq-o3"], **window})
        assert response.status_code == 200, response.text
        assert (response.json()["since"], response.json()["until"]) == (
            iso_time(since), iso_time(until))
    both = await client.post(url, headers=ADMIN, json={
        "rule_ids": ["aq-o3"], "since": since, "start": since, "until": until})
    assert both.status_code == 422 and "not both" in both.text


NAIVE_OR_BAD = [
    ("2026-11-18T00:00:00", "time zone"),
    ("2026-11-18", "time zone"),
    ("yesterday", "epoch ms"),
    ("-1000", "epoch ms"),
    ("1.7e12", "epoch ms"),
]


@pytest.mark.parametrize(("path", "param"), [
    ("/api/v1/alerts", "since"), ("/api/v1/alerts", "start"),
    ("/api/v1/incidents", "until"), ("/api/v1/incidents", "opened_from_ms"),
    ("/api/v1/audit", "since"), ("/api/v1/audit", "until_ms"),
    ("/api/v1/reports", "since"),
    ("/api/v1/devices/wl-0001/readings?metric=level_m", "until"),
])  # fmt: skip
async def test_naive_or_unreadable_times_are_422_with_the_reason(
    client: httpx.AsyncClient, path: str, param: str
) -> None:
    for value, reason in NAIVE_OR_BAD:
        response = await client.get(path, headers=ADMIN, params={param: value})
        assert response.status_code == 422, (value, response.text)
        assert reason in response.text and param in response.text, (value, response.text)


async def test_naive_time_in_a_body_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/rules/backtest", headers=ADMIN, json={
        "rule_ids": ["aq-o3"], "since": "2026-11-18T00:00:00", "until": T0_MS})
    assert response.status_code == 422 and "time zone" in response.text


@pytest.mark.parametrize(("path", "twice", "empty"), [
    ("/api/v1/alerts", {"since": T0_MS, "start": T0_MS}, {"since": T0_MS, "until": T0_MS}),
    ("/api/v1/incidents", {"until": T0_MS, "opened_to_ms": T0_MS},
     {"opened_from_ms": T0_MS, "until": T0_MS}),
    ("/api/v1/audit", {"since": 1, "since_ms": 1}, {"since": 5, "until": 4}),
])  # fmt: skip
async def test_a_bound_given_twice_or_an_empty_range_is_422(
    client: httpx.AsyncClient, path: str, twice: dict[str, int], empty: dict[str, int]
) -> None:
    response = await client.get(path, headers=ADMIN, params=twice)
    assert response.status_code == 422 and "not both" in response.json()["detail"]
    response = await client.get(path, headers=ADMIN, params=empty)
    assert response.status_code == 422 and "must be after" in response.json()["detail"]


async def test_old_time_parameters_are_deprecated_in_openapi(world: World) -> None:
    paths = world.app.openapi()["paths"]
    expected = {
        "/api/v1/alerts": {"start", "end"},
        "/api/v1/incidents": {"opened_from_ms", "opened_to_ms"},
        "/api/v1/audit": {"since_ms", "until_ms"},
        "/api/v1/reports": {"start", "end"},
        "/api/v1/devices/{device_id}/readings": {"start", "end"},
    }
    for path, old in expected.items():
        params = {p["name"]: p for p in paths[path]["get"]["parameters"]}
        assert {"since", "until"} <= set(params), path
        assert {n for n, p in params.items() if p.get("deprecated")} == old, path
    schemas = world.app.openapi()["components"]["schemas"]
    assert schemas["AlertPublic"]["properties"]["started_ms"]["deprecated"] is True
    assert schemas["AlertPublic"]["properties"]["started_at"]["format"] == "date-time"


async def walk(client: httpx.AsyncClient, path: str, limit: int, between: Any = None,
               **params: Any) -> list[str]:  # fmt: skip
    """Every id of `path` by following next_cursor, calling `between` after each page."""
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({} if cursor is None else {"cursor": cursor})}
        response = await client.get(path, headers=ADMIN, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [str(i["id"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between is not None:
            await between()


@pytest.mark.parametrize("path", list(LISTS))
async def test_cursor_pages_stay_stable_across_an_insert(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    before = [str(i["id"]) for i in await items(client, path)]
    assert len(before) >= 3
    inserted = 0

    async def insert() -> None:  # a newer alert and incident in another area and category
        nonlocal inserted
        inserted += 1
        at = T0_MS + 60_000 * inserted
        await world.alerts.handle(
            [detection(DEVICES[2], f"fire-{inserted}", Category.FIRE, at, Severity.RED)], at)

    assert await walk(client, path, 1, insert) == before  # no repeats, none skipped
    after = [str(i["id"]) for i in await items(client, path)]
    assert len(after) > len(before) and after[-len(before):] == before
    assert await walk(client, path, 2) == after
    last = await client.get(path, headers=ADMIN, params={"limit": len(after)})
    assert last.json()["next_cursor"] is None


async def test_audit_cursor_pages_stay_stable_while_requests_are_logged(
    client: httpx.AsyncClient,
) -> None:
    async def post() -> None:  # every change is a new, newest audit entry
        response = await client.post("/api/v1/api-keys", headers=ADMIN,
                                     json={"name": "k", "role": "viewer"})
        assert response.status_code == 201, response.text

    for _ in range(4):
        await post()
    before = [str(e["id"]) for e in await items(client, "/api/v1/audit")]
    assert await walk(client, "/api/v1/audit", 1, post) == before
    first = await items(client, "/api/v1/audit", limit=1, offset=0)
    await post()
    assert await items(client, "/api/v1/audit", limit=1, offset=1) == first  # what offsets do


def forged(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


@pytest.mark.parametrize(("path", "name", "key"), [
    ("/api/v1/alerts", "alerts", [T0_MS, "al-1"]),
    ("/api/v1/incidents", "incidents", [T0_MS, "in-1"]),
    ("/api/v1/audit", "audit", [1]),
])  # fmt: skip
async def test_a_bad_cursor_is_422_with_the_reason(
    client: httpx.AsyncClient, path: str, name: str, key: list[object]
) -> None:
    foreign_list = "/api/v1/incidents" if path == "/api/v1/alerts" else "/api/v1/alerts"
    foreign = (await client.get(foreign_list, headers=ADMIN, params={"limit": 1})).json()
    assert foreign["next_cursor"] is not None
    assert (await client.get(path, headers=ADMIN,
                             params={"cursor": forged(name, *key)})).status_code == 200
    bad = ["garbage!", "", "e30", foreign["next_cursor"], forged(name, 10**23, *key[1:]),
           forged(name, *key, 1), forged(name, str(key[0]), *key[1:]), forged(name, True, *key[1:])]
    if len(key) > 1:
        bad.append(forged(name, key[0], "nul\x00"))
    for cursor in bad:
        response = await client.get(path, headers=ADMIN, params={"cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert "cursor" in response.text, (cursor, response.text)
    mine = (await client.get(path, headers=ADMIN, params={"limit": 1})).json()["next_cursor"]
    both = await client.get(path, headers=ADMIN, params={"cursor": mine, "offset": 1})
    assert both.status_code == 422 and "not both" in both.text
