"""Who may call what: every route of the whole app, for every role (and no credentials at all).

`TABLE` has one line per route: method, path template, the roles allowed (`PUBLIC` = no
credentials needed) and what an allowed call needs. Callers outside the allowed roles get 403,
callers without credentials 401; with `team_scoped`, the path names the gas team's incident
(or its alert) and a responder of another team gets 404, so its existence does not leak.

Each call runs against a copy of one seeded world (`tests/support/route_world.py`: SQLite, rule
and routing files, the test InfluxDB, the real `AlertService` behind `Alerting`); a change that
should succeed gets a copy of its own. A route of the app that is missing from the table fails
`test_every_route_is_in_the_table`, which prints the lines to add.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from sqlalchemy import func, select

from alerts.sql.tables import AlertRow
from api.context import ApiContext
from api.security.principal import Role
from tests.api.conftest import DEVICES, FLOOD_TEAM, GAS_TEAM
from tests.support.auth import bearer
from tests.support.route_world import (
    ACTORS,
    ADMIN,
    ALL,
    CHANGING,
    JPEG,
    PUBLIC,
    READERS,
    STAFF,
    Row,
    Template,
    audited,
    call,
    drop_template,
    fresh_world,
    row,
    seed_template,
)
from tests.support.security import PASSWORD

SILENCE = {"matchers": [{"field": "district", "value": "xicheng"}],
           "starts_at": "2026-11-18T00:00:00Z", "ends_at": "2026-11-19T00:00:00Z",
           "reason": "works"}  # fmt: skip
RULE = {"id": "gas-authz", "name": "Gas", "category": "safety",
        "match": {"device_type": ["gas"], "metric": ["lel_pct"]}, "when": "value >= 20",
        "severity": "orange", "enabled": False}  # fmt: skip
RULE_SPEC = {k: v for k, v in RULE.items() if k != "id"}
WINDOW = {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}
NEW_DEVICE = {"id": "gas-0099", "type": "gas", "district": "dongcheng", "lat": 39.9, "lon": 116.4}
DEVICE_CSV = "id,type,district,lat,lon\ngas-0098,gas,dongcheng,39.9,116.4\n"
INCIDENT = "/api/v1/incidents/{incident_id}"
TEAM = {"handler": "gas-company", "name": "Gas crew", "channels": [{"type": "mqtt"}]}
OVERRIDES = "/api/v1/teams/{team_id}/oncall/{schedule_id}/overrides"
COVER = {"member": "li.wei", "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}

TABLE = [
    row("GET /openapi.json", PUBLIC),
    row("GET /docs", PUBLIC),
    row("GET /docs/oauth2-redirect", PUBLIC),
    row("GET /api/v1/ui-config", PUBLIC),  # the time zone, for the login page too
    # the pages and their files hold no data: what they show comes from the API
    row("GET /", PUBLIC),
    row("GET /login", PUBLIC),
    row("GET /wall", PUBLIC),
    row("GET /field", PUBLIC),
    row("GET /healthz", PUBLIC),
    row("GET /readyz", PUBLIC),
    row("GET /metrics", PUBLIC),  # Prometheus scrapes without credentials
    # devices
    row("GET /api/v1/devices", ALL),
    row("POST /api/v1/devices", STAFF, ok=201, json=NEW_DEVICE),
    row("POST /api/v1/devices/import", STAFF, csv=DEVICE_CSV),
    row("GET /api/v1/devices/{device_id}", ALL),
    row("PATCH /api/v1/devices/{device_id}", STAFF, json={"department": "gas_works"}),
    row("POST /api/v1/devices/{device_id}/retire", STAFF),
    row("POST /api/v1/devices/{device_id}/credentials", STAFF),
    row("GET /api/v1/devices/{device_id}/latest", ALL),
    row("GET /api/v1/devices/{device_id}/readings", ALL, query={"metric": "lel_pct"}),
    row("GET /api/v1/areas", ALL),
    row("GET /api/v1/map/devices", ALL),
    # incidents (responders: their own teams' only)
    row("GET /api/v1/incidents", ALL),
    row(f"GET {INCIDENT}", ALL, team_scoped=True),
    row(f"GET {INCIDENT}/cap", ALL, team_scoped=True),
    row(f"POST {INCIDENT}/acknowledge", ACTORS, team_scoped=True),
    row(f"POST {INCIDENT}/transition", ACTORS, team_scoped=True,
        json={"to": "cancelled", "detail": "false alarm"}),
    row(f"POST {INCIDENT}/reassign", STAFF, team_scoped=True, json={"team_id": FLOOD_TEAM}),
    row(f"POST {INCIDENT}/notes", ACTORS, team_scoped=True, json={"text": "on our way"}),
    row(f"POST {INCIDENT}/photos", ACTORS, team_scoped=True, raw=("image/jpeg", JPEG)),
    row(f"GET {INCIDENT}/photos/{{name}}", ALL, team_scoped=True),
    row("GET /api/v1/feeds/warnings.atom", ALL),
    row("WS /api/v1/live", ALL),
    row("GET /api/v1/live/sse", ALL, streams=True),
    # alerts, silences, reports, routing
    row("GET /api/v1/alerts", ALL),
    row("GET /api/v1/alerts/{alert_id}", ALL, team_scoped=True),
    row("GET /api/v1/silences", ALL),
    row("POST /api/v1/silences", STAFF, ok=201, json=SILENCE),
    row("POST /api/v1/silences/{silence_id}/expire", STAFF, ok=204),
    row("GET /api/v1/reports", READERS, query=WINDOW),
    row("GET /api/v1/routing", ALL),
    row("POST /api/v1/routing/reload", ADMIN),
    row("POST /api/v1/routing/teams/{team_id}/mqtt-login", ADMIN, ok=201),
    row("GET /api/v1/teams/{team_id}/oncall", ADMIN),
    row("GET /api/v1/teams", ALL),
    row("GET /api/v1/teams/{team_id}", ALL),
    row("PUT /api/v1/teams/{team_id}", ADMIN, json=TEAM, missing=200),  # unknown: created
    row("DELETE /api/v1/teams/{team_id}", ADMIN, ok=409),  # routes still send to the gas team
    row(f"POST {OVERRIDES}", ADMIN, ok=201, json=COVER),
    row(f"DELETE {OVERRIDES}/{{index}}", ADMIN, ok=204, missing=422),  # index: an integer
    # rules
    row("GET /api/v1/rules", ALL),
    row("GET /api/v1/rules/{rule_id}", ALL),
    row("POST /api/v1/rules", STAFF, ok=201, json=RULE),
    row("PUT /api/v1/rules/{rule_id}", STAFF, json=RULE_SPEC),
    row("POST /api/v1/rules/{rule_id}/enable", STAFF),
    row("POST /api/v1/rules/{rule_id}/disable", STAFF),
    row("DELETE /api/v1/rules/{rule_id}", STAFF, ok=204),
    row("POST /api/v1/rules/validate", STAFF, json={"text": "[]"}, reads_only=True),
    row("POST /api/v1/rules/backtest", STAFF, json={"rule_ids": ["{rule_id}"], **WINDOW}),
    # identity, keys, audit
    row("POST /api/v1/auth/token", PUBLIC, form={"username": "olga", "password": PASSWORD}),
    row("POST /api/v1/auth/refresh", PUBLIC, json={"refresh_token": "{refresh_token}"}),
    row("GET /api/v1/auth/me", ALL),
    row("POST /api/v1/api-keys", ADMIN, ok=201, json={"name": "gis", "role": "viewer"}),
    row("GET /api/v1/api-keys", ADMIN),
    row("DELETE /api/v1/api-keys/{key_id}", ADMIN),
    row("GET /api/v1/audit", ADMIN),
    # users
    row("GET /api/v1/users", ADMIN),
    row("POST /api/v1/users", ADMIN, ok=201,
        json={"name": "newcomer", "role": "viewer", "password": PASSWORD}),
    row("GET /api/v1/users/{user_name}", ADMIN),
    row("PATCH /api/v1/users/{user_name}", ADMIN, json={"disabled": True}),
    row("PUT /api/v1/users/{user_name}/password", ADMIN, ok=204, json={"password": PASSWORD}),
    row("DELETE /api/v1/users/{user_name}", ADMIN, ok=204),
]

OTHER_TEAM = "responder of another team"
# Who calls: a name for the test output → the subject of its token and its role's teams.
CALLERS: dict[str, tuple[str, Role | None, tuple[str, ...]]] = {
    "anonymous": ("", None, ()),
    "admin": ("root", Role.admin, ()),
    "operator": ("olga", Role.operator, ()),
    "responder": ("ana", Role.responder, (GAS_TEAM,)),
    "viewer": ("vic", Role.viewer, ()),
    OTHER_TEAM: ("bo", Role.responder, (FLOOD_TEAM,)),
}


def headers_of(caller: str) -> dict[str, str]:
    subject, role, teams = CALLERS[caller]
    return {} if role is None else bearer(role, *teams, subject=subject)


def expected(r: Row, caller: str) -> int:
    if r.allowed is PUBLIC:
        return r.ok
    if caller == "anonymous":
        return 401
    role = CALLERS[caller][1]
    if role not in r.allowed:
        return 403
    return 404 if caller == OTHER_TEAM and r.team_scoped else r.ok


def callers(r: Row) -> list[str]:
    everyone = list(CALLERS)
    return everyone if r.team_scoped else [c for c in everyone if c != OTHER_TEAM]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, influxd: Any) -> Iterator[Template]:
    world = asyncio.run(seed_template(tmp_path_factory.mktemp("authz"), influxd.url))
    yield world
    asyncio.run(drop_template(world))


# ---- the tests ------------------------------------------------------------------------------


def _app_routes(app: FastAPI) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIWebSocketRoute):
            found.add(("WS", route.path))
        else:
            found.update((m, route.path) for m in route.methods or () if m != "HEAD")
    return found


async def test_every_route_is_in_the_table(template: Template, tmp_path: Path) -> None:
    async with fresh_world(template, tmp_path / "w") as app:
        routes = _app_routes(app)
    listed = {r.key for r in TABLE}
    missing = sorted(routes - listed)
    assert not missing, "routes without a line in TABLE (add one per route):\n" + "\n".join(
        f'    row("{m} {p}", ...),' for m, p in missing)
    stale = sorted(listed - routes)
    assert not stale, f"TABLE lines for routes the app does not have: {stale}"
    assert len(listed) == len(TABLE), "a route is in TABLE twice"


def test_viewers_change_nothing() -> None:
    changing = [r for r in TABLE
                if r.method in CHANGING and r.allowed is not PUBLIC and not r.reads_only]
    assert changing
    assert [r.key for r in changing if Role.viewer in (r.allowed or ())] == []


@pytest.mark.parametrize("r", TABLE, ids=[f"{r.method} {r.path}" for r in TABLE])
async def test_route_answers_each_caller_as_the_table_says(
    r: Row, template: Template, tmp_path: Path
) -> None:
    """Refused calls share one world; a change that should succeed gets a world of its own.
    Every state-changing call with credentials must be in the audit log."""
    wrong: list[str] = []
    async with AsyncExitStack() as stack:
        shared = await stack.enter_async_context(fresh_world(template, tmp_path / "shared"))
        for caller in callers(r):
            want = expected(r, caller)
            async with AsyncExitStack() as own:
                app = shared
                if r.method in CHANGING and want < 400:
                    folder = tmp_path / caller.replace(" ", "-")
                    app = await own.enter_async_context(fresh_world(template, folder))
                got = await call(app, r, headers_of(caller), template.ids)
                if r.method in CHANGING and caller != "anonymous" and r.allowed is not PUBLIC:
                    statuses = await audited(app, CALLERS[caller][0], r.path)
                    if statuses != [got]:
                        wrong.append(f"{caller}: audit log has {statuses}, answered {got}")
            if got != want and not (want // 100 == got // 100 == 2):
                wrong.append(f"{caller}: expected {want}, got {got}")
    assert not wrong, f"{r.method} {r.path}:\n  " + "\n  ".join(wrong)


WITH_IDS = [r for r in TABLE if "{" in r.path and r.allowed is not PUBLIC]


@pytest.mark.parametrize("r", WITH_IDS, ids=[f"{r.method} {r.path}" for r in WITH_IDS])
async def test_unknown_ids_are_not_found(r: Row, template: Template, tmp_path: Path) -> None:
    assert r.allowed is not None
    role = Role.admin if Role.admin in r.allowed else next(iter(r.allowed))
    nowhere = {k: "nope-0000" for k in template.ids} | {"refresh_token": "nope"}
    async with fresh_world(template, tmp_path / "w") as app:
        teams = (GAS_TEAM,) if role is Role.responder else ()
        got = await call(app, r, bearer(role, *teams), nowhere)
    assert got == r.missing


async def test_the_seeded_world_is_what_the_table_assumes(template: Template,
                                                           tmp_path: Path) -> None:
    async with fresh_world(template, tmp_path / "w") as app:
        context: ApiContext = app.state.context
        assert context.alerts is not None
        incident = await context.alerts.service.incident(template.ids["incident_id"])
        assert incident.team_id == GAS_TEAM
        async with context.sessions() as session:
            alerts = await session.scalar(select(func.count()).select_from(AlertRow))
        assert alerts and alerts >= len(DEVICES)
