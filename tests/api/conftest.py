"""A whole API over real collaborators: migrated SQLite, the test InfluxDB, an `AlertService`
with a `LiveHub`, a few registered devices (also as the registry), incidents raised through
`AlertService.handle`, a rule file seeded from the shipped pack and the shipped routing file.

`world` builds `create_app(ApiContext(...))` and says which incident went to which team;
`client` is an httpx client on it (no socket); `served` runs it under uvicorn on a free
loopback port in the test's event loop and gives its base URL.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from alerts.channels.live import LiveHub
from alerts.routing import load_routing
from alerts.service import AlertService
from api.app import create_app
from api.context import AlertsPart, ApiContext, RulesPart, TokenPolicy
from api.photos import PhotoStore
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from rules.detection import Category, Detection, DetectionState, Severity
from rules.language.rulefile import seed_rule_file
from tests.support.auth import SECRET
from tests.support.polling import eventually
from urbanwatch.database import create_engine, create_session_factory, migrate

T0_MS = 1_794_999_960_000  # 2026-11-18
PHOTO_BYTES = 64 * 1024  # the photo limit here, below the body limit
GAS_TEAM, FLOOD_TEAM, FIELD_TEAM = "gas-emergency", "drainage-crew", "field-maintenance"
DEVICES = [
    Device("gas-0001", "gas", "dongcheng", 39.91, 116.40, "g-1-1", "gas_company"),
    Device("gas-0002", "gas", "dongcheng", 39.92, 116.42, "g-1-2", "gas_company"),
    Device("wl-0001", "water_level", "xicheng", 39.93, 116.36, "g-0-1", "water_authority"),
    Device("mh-0001", "manhole", "chaoyang", 39.95, 116.48, "g-2-3", "city_management"),
]


def detection(
    device: Device, rule: str, category: Category, ts_ms: int,
    severity: Severity = Severity.RED, state: DetectionState = DetectionState.FIRING,
) -> Detection:  # fmt: skip
    return Detection(rule, category, device.id, state, severity, ts_ms, 1.0, device.id,
                     "value", device.district, device.grid)  # fmt: skip


SEED = [
    [detection(DEVICES[0], "gas-high", Category.SAFETY, T0_MS),
     detection(DEVICES[1], "gas-high", Category.SAFETY, T0_MS, Severity.ORANGE)],
    [detection(DEVICES[2], "water-rise", Category.FLOOD, T0_MS + 2_000, Severity.YELLOW)],
    [detection(DEVICES[3], "device-offline", Category.DEVICE, T0_MS + 3_000, Severity.BLUE)],
]  # fmt: skip
"""Three incidents, opened at T0, T0 + 2 s and T0 + 3 s: a red gas leak (gas team), a yellow
flood (drainage crew) and a device fault (field maintenance, not a public warning)."""


@dataclass
class World:
    app: FastAPI
    context: ApiContext
    alerts: AlertService
    hub: LiveHub
    incident_of: dict[str, str]  # team id -> the id of the incident dispatched to it


@pytest.fixture
async def world(tmp_path: Path, influx_db: InfluxClient) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"
    await migrate(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    await DeviceStore(sessions).add(DEVICES)
    located = {d.id: d for d in DEVICES}
    hub = LiveHub()
    alerts = AlertService(
        sessions,
        load_routing(),
        device_types={d.id: d.type for d in DEVICES},
        locate=lambda i: (located[i].lat, located[i].lon) if i in located else None,
        hub=hub,
    )
    for batch in SEED:
        await alerts.handle(batch, batch[0].ts_ms)
    incident_of = {i.team_id or "": i.id for i in await alerts.incidents()}
    assert set(incident_of) == {GAS_TEAM, FLOOD_TEAM, FIELD_TEAM}
    catalogue = load_catalogue()
    registry = Registry.build(catalogue, DEVICES)
    rules_path = tmp_path / "rules.yaml"
    seed_rule_file(rules_path)

    async def reload_routing() -> None:
        await alerts.set_routing(load_routing())

    context = ApiContext(
        sessions=sessions,
        influx=influx_db,
        catalogue=catalogue,
        tokens=TokenPolicy(SECRET),
        alerts=AlertsPart(alerts, hub, reload_routing),
        rules=RulesPart(rules_path, lambda: registry),
        photos=PhotoStore(tmp_path / "photos", PHOTO_BYTES),
    )
    yield World(create_app(context), context, alerts, hub, incident_of)
    await engine.dispose()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def served(world: World) -> AsyncIterator[str]:
    async with serve(world.app) as url:
        yield url


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free loopback port in this event loop; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    def started() -> bool:
        if task.done():
            task.result()  # startup failed: raise its error
        return server.started

    await eventually(started, "the API server to start", interval_s=0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task
    sock.close()
