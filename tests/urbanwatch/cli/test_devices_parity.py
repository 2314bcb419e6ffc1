"""The API and the CLI refuse the same device input with the same reason.

Both call `devices.provisioning`; each case runs through both entry points against the
same kind of database (areas west/w-0-0 stored, gateway gw-1 and retired aq-old present)
and compares the API's 4xx `detail` with the CLI's one-line error.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from api.context import ApiContext, TokenPolicy
from api.security.principal import Role
from devices.catalogue import load_catalogue
from devices.geo import parse_geography
from devices.provisioning import Provisioning
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from tests.support.auth import SECRET, bearer
from urbanwatch.cli.devices import devices_app
from urbanwatch.database import create_engine, create_session_factory, migrate

CATALOGUE = load_catalogue()
AREAS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"id": "west", "kind": "district"},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}},
    {"type": "Feature", "properties": {"id": "w-0-0", "kind": "grid", "district": "west"},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}},
]}
GOOD = {"id": "aq-1", "type": "air_quality", "district": "west", "lat": 0.5, "lon": 0.5}


def _url(state: Path) -> str:
    return f"sqlite+aiosqlite:///{state / 'urbanwatch.db'}"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state folder whose database holds the areas, gateway gw-1 and retired aq-old."""
    state = tmp_path / "state"
    state.mkdir()

    async def seed() -> None:
        await migrate(_url(state))
        engine = create_engine(_url(state))
        sessions = create_session_factory(engine)
        await DeviceStore(sessions).put_areas(parse_geography(AREAS).areas())
        provisioning = Provisioning(sessions, CATALOGUE)
        await provisioning.create(GOOD | {"id": "gw-1"})
        await provisioning.create(GOOD | {"id": "aq-old"})
        await provisioning.retire("aq-old")
        await engine.dispose()

    asyncio.run(seed())
    return state


def _api(state: Path, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        engine = create_engine(_url(state))
        influx = InfluxClient("http://127.0.0.1:9", "unused")
        context = ApiContext(sessions=create_session_factory(engine), influx=influx,
                             catalogue=CATALOGUE, tokens=TokenPolicy(SECRET))
        transport = httpx.ASGITransport(app=create_app(context))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                         headers=bearer(Role.operator)) as client:
                return await client.request(method, path, **kwargs)
        finally:
            await influx.aclose()
            await engine.dispose()

    return asyncio.run(call())


def _cli(state: Path, *args: str) -> str:
    """The CLI's one-line reason for refusing (it must refuse)."""
    result = CliRunner().invoke(devices_app, [*args, "--state-dir", str(state)])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def _add_args(fields: dict[str, object]) -> list[str]:
    args = [str(fields["id"])]
    for name, value in fields.items():
        if name == "attributes":
            assert isinstance(value, dict)
            args += [a for k, v in value.items() for a in ("--attr", f"{k}={v}")]
        elif name != "id":
            args += [f"--{name}", str(value)]
    return args


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"district": "atlantis"}, 422, "device 'aq-1': unknown district 'atlantis'"),
        ({"grid": "w-9-9"}, 422, "unknown grid cell 'w-9-9' in district 'west'"),
        ({"gateway": "gw-9"}, 422, "device 'aq-1': unknown gateway 'gw-9'"),
        ({"gateway": "aq-1"}, 422, "device 'aq-1': a device cannot be its own gateway"),
        ({"type": "rocket"}, 422, "unknown device type 'rocket'"),
        ({"id": "a/b"}, 422, "bad device id 'a/b'"),
        ({"id": "aq:1"}, 422, "bad device id 'aq:1': ':' at position 2 is not allowed"),
        ({"id": "aq\nINFO forged"}, 422, "bad device id 'aq\\nINFO forged': '\\n' at position 2"),
        ({"id": "aq-" + "9" * 62}, 422, "is longer than 64 characters"),
        ({"id": "urbanwatch.x"}, 422, "(urbanwatch.* is reserved)"),
        ({"district": "west #1"}, 422, "bad district id 'west #1': ' ' at position 4"),
        ({"grid": "w/0"}, 422, "bad grid cell id 'w/0': '/' at position 1"),
        ({"gateway": "gw+"}, 422, "bad device id 'gw+': '+' at position 2"),
        ({"department": "env bureau"}, 422, "bad department id 'env bureau'"),
        ({"id": "gw-1"}, 409, "device 'gw-1' already exists"),
        ({"attributes": {"warning-level": 3}}, 422, "attribute name 'warning-level'"),
    ],
    ids=["district", "grid", "gateway", "own-gateway", "type", "id", "colon", "newline",
         "long", "reserved", "district-name", "grid-name", "gateway-name", "department-name",
         "duplicate", "attribute"],
)
def test_create_is_refused_alike(
    state: Path, change: dict[str, object], status: int, reason: str
) -> None:
    fields = GOOD | change
    by_api = _api(state, "POST", "/api/v1/devices", json=fields)
    by_cli = _cli(state, "add", *_add_args(fields))

    assert by_api.status_code == status
    assert reason in by_api.json()["detail"]
    assert by_cli == by_api.json()["detail"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("aq-1,air_quality,atlantis,0.5,0.5,", "device aq-1: unknown district 'atlantis'"),
        ("aq-1,air_quality,west,0.5,0.5,gw-9", "device aq-1: unknown gateway 'gw-9'"),
        ("urbanwatch.1,air_quality,west,0.5,0.5,", "device urbanwatch.1: 'urbanwatch.1' "
         "cannot be a device's MQTT username (urbanwatch.* is reserved)"),
        ("aq:1,air_quality,west,0.5,0.5,", "line 2: bad device id 'aq:1': ':' at position 2"),
        ('"aq 1",air_quality,west,0.5,0.5,', "line 2: bad device id 'aq 1': ' ' at position 2"),
        ("aq-1,air_quality,west/x,0.5,0.5,", "line 2: bad district id 'west/x'"),
        ("aq-1,air_quality,west,0.5,0.5,gw#", "line 2: bad device id 'gw#': '#' at position 2"),
        ("aq-1,rocket,west,0.5,0.5,", "line 2: unknown device type 'rocket'"),
    ],
    ids=["district", "gateway", "reserved", "colon", "space", "district-name", "gateway-name",
         "type"],
)
def test_import_is_refused_alike(state: Path, tmp_path: Path, row: str, problem: str) -> None:
    data = f"id,type,district,lat,lon,gateway\n{row}\n"
    path = tmp_path / "devices.csv"
    path.write_text(data)
    by_api = _api(state, "POST", "/api/v1/devices/import", content=data,
                  headers={"content-type": "text/csv"})
    by_cli = _cli(state, "import", str(path))

    assert by_api.status_code == 422
    (found,) = by_api.json()["problems"]
    assert found.startswith(problem)
    assert by_cli == f"{path}: 1 invalid rows: {found}"


def test_rotation_of_a_retired_device_is_refused_alike(state: Path) -> None:
    by_api = _api(state, "POST", "/api/v1/devices/aq-old/credentials")
    by_cli = _cli(state, "rotate", "aq-old")

    assert by_api.status_code == 409
    assert by_cli == by_api.json()["detail"] == "device 'aq-old' is retired; it may not connect"


def test_an_unknown_device_is_refused_alike(state: Path) -> None:
    by_api = _api(state, "POST", "/api/v1/devices/nope/credentials")
    by_cli = _cli(state, "rotate", "nope")

    assert by_api.status_code == 404
    assert by_cli == by_api.json()["detail"] == "no device 'nope'"


def test_what_both_accept_is_stored_alike(state: Path, tmp_path: Path) -> None:
    by_api = _api(state, "POST", "/api/v1/devices", json=GOOD)
    result = CliRunner().invoke(devices_app, ["add", *_add_args(GOOD | {"id": "aq-2"}),
                                              "--json", "--state-dir", str(state)])

    assert by_api.status_code == 201 and result.exit_code == 0, result.output
    from_cli = json.loads(result.stdout)
    del from_cli["mqtt"]
    assert from_cli == by_api.json()["device"] | {"id": "aq-2", "grid": "w-0-0"}
