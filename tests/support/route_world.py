"""Calling every route of the whole app over a seeded world, for `tests/api/test_authorization.py`.

A `Row` says how to call one route and who may; `seed_template` builds the world once (SQLite
with devices, incidents raised through the real `AlertService`, a silence, a user with a refresh
token, an API key, a photo on an incident; rule and routing files; an InfluxDB database) and
`fresh_world` gives the app over a private copy of it, so one call's changes never reach the
next.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from alerts.decisions.silences import Field, Matcher, Silence
from alerts.routing_edit import RoutingFile
from alerts.sql.tables import AlertRow
from api.app import create_app
from api.context import AlertsPart, ApiContext, RulesPart, TokenPolicy
from api.photos import PhotoStore
from api.security.api_keys import ApiKeyStore
from api.security.principal import Role
from api.security.refresh import RefreshTokens
from api.security.store import audit_log
from api.security.users import UserStore
from devices.catalogue import load_catalogue
from devices.registry import Registry
from devices.store import DeviceStore
from ingest.config import MqttConfig
from ingest.timeseries.client import InfluxClient
from rules.language.rulefile import seed_rule_file
from tests.api.conftest import DEVICES, GAS_TEAM, SEED, serve
from tests.support.auth import SECRET
from tests.support.security import PASSWORD
from urbanwatch.alerting import Alerting
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.settings import AlertsSettings

PUBLIC = None
ALL = frozenset(Role)
READERS = frozenset({Role.admin, Role.operator, Role.viewer})  # everyone but field teams
ACTORS = frozenset({Role.admin, Role.operator, Role.responder})  # act on incidents
STAFF = frozenset({Role.admin, Role.operator})  # the operations center
ADMIN = frozenset({Role.admin})
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)  # how a JPEG starts (all that is checked)
PHOTO_BYTES = 1 << 20
# the gas team with people and an on-call schedule holding one override, to edit through the API
GAS_PEOPLE = {"id": GAS_TEAM, "name": "Gas emergency repair team", "channels": [{"type": "mqtt"}],
              "members": [{"id": "li.wei", "name": "Li Wei", "phone": "+8613800000001"},
                          {"id": "zhao.lei", "name": "Zhao Lei", "phone": "+8613800000003"}],
              "oncall": [{"id": "lead", "rotation": {"members": ["li.wei", "zhao.lei"]},
                          "overrides": [{"member": "zhao.lei", "start": "2026-12-24T18:00",
                                         "end": "2026-12-26T09:00"}]}]}  # fmt: skip
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Row:
    method: str  # an HTTP method, or WS for a WebSocket
    path: str  # the route's template, exactly as the app has it
    allowed: frozenset[Role] | None
    ok: int = 200  # what an allowed caller gets (any 2xx counts as 2xx)
    team_scoped: bool = False
    json: Any = None  # request body; "{name}" strings are filled from the world's ids
    form: dict[str, str] | None = None
    csv: str | None = None
    raw: tuple[str, bytes] | None = None  # (content type, body)
    query: dict[str, str] = field(default_factory=dict)
    missing: int = 404  # what an allowed caller gets for ids that do not exist
    reads_only: bool = False  # a POST that changes nothing (viewers may call it)
    streams: bool = False  # an endless response (SSE): only its status is read

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def row(spec: str, allowed: frozenset[Role] | None, **kwargs: Any) -> Row:
    method, path = spec.split(" ", 1)
    return Row(method, path, allowed, **kwargs)


@dataclass(frozen=True)
class Template:
    folder: Path
    influx_url: str
    influx_db: str
    ids: dict[str, str]  # path parameters and placeholders → existing values


async def seed_template(folder: Path, influx_url: str) -> Template:
    """The world every call starts from, in `folder` (and a new InfluxDB database)."""
    influx_db = f"authz_{uuid.uuid4().hex[:12]}"
    ids = await _seed(folder, influx_url, influx_db)
    return Template(folder, influx_url, influx_db, ids)


async def _seed(folder: Path, influx_url: str, influx_db: str) -> dict[str, str]:
    seed_rule_file(folder / "rules.yaml")
    shutil.copy(str(files("alerts").joinpath("data/routing.yaml")), folder / "routing.yaml")
    RoutingFile(folder / "routing.yaml").put_team("gas-company", GAS_PEOPLE)
    client = InfluxClient(influx_url, influx_db)
    await client.ensure_schema()
    await client.aclose()
    url = f"sqlite+aiosqlite:///{folder / 'world.db'}"
    await migrate(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    now_ms = time.time_ns() // 1_000_000
    try:
        await DeviceStore(sessions).add(DEVICES)
        alerting = _alerting(sessions, folder)
        for batch in SEED:
            await alerting.service.handle(batch, batch[0].ts_ms)
        incident = next(i for i in await alerting.service.incidents() if i.team_id == GAS_TEAM)
        silence = await alerting.service.create_silence(Silence(
            "sil-authz", (Matcher(Field("district"), "chaoyang"),), now_ms, now_ms + 3_600_000,
            "root", "works",
        ), now_ms)
        async with sessions() as session:
            alert_id = await session.scalar(
                select(AlertRow.id).where(AlertRow.device_id == DEVICES[0].id))
        await UserStore(sessions).add("olga", Role.operator, [], PASSWORD, now_ms)
        refresh = await RefreshTokens(sessions).issue("olga", now_ms, ttl_s=3600)
        photo = PhotoStore(folder / "photos", PHOTO_BYTES).save(incident.id, JPEG, "image/jpeg")
        await alerting.service.add_photo(incident.id, "ana", now_ms, photo)
        key, _ = await ApiKeyStore(sessions).create("gis", Role.viewer, [], "root", now_ms)
    finally:
        await engine.dispose()
    return {"device_id": DEVICES[0].id, "incident_id": incident.id, "alert_id": str(alert_id),
            "silence_id": silence.id, "rule_id": "aq-o3", "key_id": key.id,
            "team_id": GAS_TEAM, "refresh_token": refresh, "name": photo,
            "user_name": "olga", "schedule_id": "lead", "index": "0"}  # fmt: skip


async def drop_template(template: Template) -> None:
    client = InfluxClient(template.influx_url, template.influx_db)
    await client.drop_database()
    await client.aclose()


def _alerting(sessions: Any, folder: Path) -> Alerting:
    registry = Registry.build(load_catalogue(), DEVICES)
    return Alerting(  # its MQTT channel is never started: nothing is dispatched here
        sessions, lambda: registry, MqttConfig("127.0.0.1", 9, "authz-test"),
        AlertsSettings(routing_path=folder / "routing.yaml"),
    )


@asynccontextmanager
async def fresh_world(template: Template, folder: Path) -> AsyncIterator[FastAPI]:
    """The whole app over a private copy of the seeded world in `folder`."""
    folder.mkdir(parents=True)
    with sqlite3.connect(template.folder / "world.db") as source, \
            sqlite3.connect(folder / "world.db") as target:  # fmt: skip
        source.backup(target)
    for name in ("rules.yaml", "routing.yaml"):
        shutil.copy(template.folder / name, folder / name)
    shutil.copytree(template.folder / "photos", folder / "photos")
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'world.db'}")
    sessions = create_session_factory(engine)
    influx = InfluxClient(template.influx_url, template.influx_db)
    alerting = _alerting(sessions, folder)
    registry = Registry.build(load_catalogue(), DEVICES)
    context = ApiContext(
        sessions=sessions, influx=influx, catalogue=load_catalogue(), tokens=TokenPolicy(SECRET),
        alerts=AlertsPart(alerting.service, alerting.hub, alerting.reload_routing,
                          folder / "routing.yaml"),
        rules=RulesPart(folder / "rules.yaml", lambda: registry),
        photos=PhotoStore(folder / "photos", PHOTO_BYTES),
    )
    try:
        yield create_app(context)
    finally:
        await influx.aclose()
        await engine.dispose()


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    return value


async def call(app: FastAPI, r: Row, headers: dict[str, str], ids: dict[str, str]) -> int:
    """The status `r` answers with (for a WebSocket: 401 when closed unauthenticated,
    200 when accepted and kept open)."""
    path = r.path.format(**ids)
    if r.method == "WS":
        return await _websocket(app, path, headers)
    if r.streams:
        return await _stream_status(app, path, headers)
    kwargs: dict[str, Any] = {"headers": dict(headers), "params": r.query}
    if r.json is not None:
        kwargs["json"] = _filled(r.json, ids)
    if r.form is not None:
        kwargs["data"] = r.form
    if r.csv is not None:
        kwargs["content"] = r.csv
        kwargs["headers"]["content-type"] = "text/csv"
    if r.raw is not None:
        kwargs["headers"]["content-type"], kwargs["content"] = r.raw
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(r.method, path, **kwargs)
    assert response.status_code < 500, f"{r.method} {path}: {response.text}"
    return response.status_code


async def _websocket(app: FastAPI, path: str, headers: dict[str, str]) -> int:
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":  # see whether it closes, then leave
            asyncio.get_running_loop().call_later(0.2, inbox.put_nowait,
                                                  {"type": "websocket.disconnect", "code": 1000})

    scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "scheme": "ws", "server": ("test", 80), "client": ("127.0.0.1", 1),
             "subprotocols": [], "asgi": {"version": "3.0"}}  # fmt: skip
    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    kinds = [m["type"] for m in sent]
    if "websocket.close" in kinds:
        close = next(m for m in sent if m["type"] == "websocket.close")
        return 401 if close.get("code") == 1008 else 500 + close.get("code", 0)
    return 200 if kinds == ["websocket.accept"] else 500


async def _stream_status(app: FastAPI, path: str, headers: dict[str, str]) -> int:
    """The status of an endless GET response, served by a real server as in production; the
    client leaves once it has it (httpx's ASGI transport would wait for a body that never
    ends)."""
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        return response.status_code


async def audited(app: FastAPI, actor: str, route: str) -> list[int]:
    sessions = app.state.context.sessions
    async with sessions() as session:
        rows = await session.execute(
            select(audit_log.c.status).where(audit_log.c.actor == actor, audit_log.c.route == route,
                                             audit_log.c.entity == "http"))
        return [s for (s,) in rows]


