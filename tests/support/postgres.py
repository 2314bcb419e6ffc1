"""PostgreSQL for the storage tests, shared by every package (registered in `tests/conftest.py`).

`pg_server` (session) starts a throwaway PostgreSQL cluster (`bench.postgres`: initdb into a
temp folder as the postgres user, pg_ctl on a free port, fsync off), or uses
`URBANWATCH_TEST_PG_URL` when set. Missing binaries fail with the install command.
`db_url` is parametrized over both backends and gives each test a fresh database;
`sessions` is a session factory on it, migrated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.postgres import PostgresError, throwaway_cluster
from urbanwatch.database import create_engine, create_session_factory, migrate


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """An admin URL (postgresql+asyncpg://...) of a PostgreSQL server for this test session."""
    if url := os.environ.get("URBANWATCH_TEST_PG_URL"):
        yield url
        return
    try:
        cluster = throwaway_cluster()
        url = cluster.__enter__().url
    except PostgresError as exc:
        pytest.fail(f"could not start PostgreSQL: {exc}", False)
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    admin_url = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated `db_url` database (each backend)."""
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()
