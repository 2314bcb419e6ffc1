"""Every event the live stream sends validates against the schema published in OpenAPI
(`api.schemas.live`, whose models refuse keys they do not name): alert, incident and dispatch
events as the platform emits them, over a real WebSocket and SSE, and the stream's own gap and
closed events."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, get_args

import httpx
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect

from alerts.channels.dispatcher import Dispatcher
from api.schemas.live import LiveEvent
from api.security.principal import Principal, Role
from api.security.tokens import issue_access_token
from rules.detection import Category, DetectionState
from tests.api.conftest import DEVICES, T0_MS, World, detection
from tests.support.auth import SECRET, bearer

WAIT_S = 10  # an upper bound for an event that is due; never reached when things work
EVENTS = TypeAdapter(LiveEvent)
TYPES = {model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
         for model in get_args(get_args(LiveEvent)[0])}
OPERATOR = bearer(Role.operator, subject="olga")


def valid(event: dict[str, Any]) -> dict[str, Any]:
    EVENTS.validate_python(event)
    return event


async def received(ws: ClientConnection, until: Any) -> list[dict[str, Any]]:
    """Events from `ws`, each validated, up to the first for which `until` holds."""
    got = []
    while True:
        event = valid(json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)))
        got.append(event)
        if until(event):
            return got


def ws_url(served: str, token: str, since: int) -> str:
    return f"{served.replace('http://', 'ws://')}/api/v1/live?token={token}&since={since}"


async def test_every_event_type_validates_against_the_published_schema(
    served: str, world: World
) -> None:
    assert {"alert", "incident", "dispatch", "gap", "closed"} == TYPES
    token = OPERATOR["Authorization"].removeprefix("Bearer ")
    seen: list[dict[str, Any]] = []
    async with connect(ws_url(served, token, 0)) as ws, httpx.AsyncClient(
        base_url=served, timeout=WAIT_S
    ) as http:
        gas = world.incident_of["gas-emergency"]
        seen += await received(ws, lambda e: e["type"] == "incident" and e["incident_id"] == gas)
        acked = await http.post(f"/api/v1/incidents/{gas}/acknowledge", headers=OPERATOR)
        assert acked.status_code == 200, acked.text
        seen += await received(ws, lambda e: e.get("kind") == "acknowledged")
        cleared = detection(DEVICES[0], "gas-high", Category.SAFETY, T0_MS + 60_000,
                            state=DetectionState.CLEARED)
        await world.alerts.handle([cleared], T0_MS + 60_000)
        seen += await received(ws, lambda e: e["type"] == "alert" and e["kind"] == "cleared")
        assert await Dispatcher(world.context.sessions, {}, hub=world.hub).drain_once() > 0
        seen += await received(ws, lambda e: e["type"] == "dispatch")
        newest = max(e["id"] for e in seen)
    async with connect(ws_url(served, token, newest + 100)) as ws:
        seen += await received(ws, lambda e: True)  # a gap: resuming after an unknown id
    short_lived = issue_access_token(Principal("olga", Role.operator), SECRET,
                                     int(time.time()), 1)
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http, http.stream(
        "GET", "/api/v1/live/sse", params={"token": short_lived}
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(valid(json.loads(line.removeprefix("data: "))))
                if seen[-1]["type"] == "closed":
                    break
    assert {e["type"] for e in seen} == TYPES
    for event in seen:
        if "ts_ms" in event:
            assert event["at"].endswith("Z")


async def test_the_schema_is_published_in_openapi(world: World) -> None:
    document = world.app.openapi()
    schemas = document["components"]["schemas"]
    sse = document["paths"]["/api/v1/live/sse"]["get"]["responses"]["200"]["content"]
    mapping = sse["text/event-stream"]["itemSchema"]["properties"]["data"]["contentSchema"][
        "discriminator"]["mapping"]
    assert set(mapping) == TYPES
    for ref in mapping.values():
        schema = schemas[ref.rsplit("/", 1)[-1]]
        assert schema["additionalProperties"] is False
        [example] = schema["examples"]
        valid(example)
