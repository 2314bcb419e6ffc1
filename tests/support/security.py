"""An API over a fresh, migrated SQLite database, and users in it, for the security tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.context import ApiContext, TokenPolicy
from api.security.principal import Role
from api.security.ratelimit import LoginThrottle
from api.security.users import UserStore
from devices.catalogue import load_catalogue
from ingest.timeseries.client import InfluxClient
from tests.support.auth import SECRET
from urbanwatch.database import create_engine, create_session_factory, migrate

PASSWORD = "correct horse battery"
ADDRESS = "203.0.113.7"  # the client address requests come from (TEST-NET-3)


@asynccontextmanager
async def security_api(
    tmp_path: Path, influx: InfluxClient | None = None, address: str = ADDRESS, **token_policy: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, ApiContext]]:
    """A client of the whole app and its context; without `influx`, one that is never
    reached (these tests do not read time series)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'security.db'}"
    await migrate(url)
    engine = create_engine(url)
    unused = None
    if influx is None:
        influx = unused = InfluxClient("http://127.0.0.1:9", "unused")
    context = ApiContext(
        sessions=create_session_factory(engine), influx=influx, catalogue=load_catalogue(),
        tokens=TokenPolicy(SECRET, **token_policy),
        login_throttle=LoginThrottle(delay_base_s=0.0),  # its delays are table-tested
    )
    transport = httpx.ASGITransport(app=create_app(context), client=(address, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, context
    finally:
        if unused is not None:
            await unused.aclose()
        await engine.dispose()


@asynccontextmanager
async def from_address(client: httpx.AsyncClient, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app whose requests come from `address`."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    other = httpx.ASGITransport(app=transport.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=other, base_url=client.base_url) as elsewhere:
        yield elsewhere


async def add_user(
    context: ApiContext, name: str, role: Role, *teams: str, password: str = PASSWORD
) -> None:
    await UserStore(context.sessions).add(name, role, teams, password, time.time_ns() // 10**6)


async def login(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"username": name, "password": password}
    )
