"""SQL engine and schema migrations (SQLite with WAL by default, PostgreSQL in production).

`migrate(url)` runs Alembic `upgrade head` on a connection it opens itself, so
the same call works from the CLI, the platform's start-up and tests, inside a
running event loop. Workers that start together over one PostgreSQL database migrate one
at a time (an advisory lock held for the migration's transaction): the later ones find the
schema at head and do nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from devices.private_paths import private_dir, private_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_WAIT_MS = 5000
MIGRATION_LOCK = 0x75770000  # the advisory lock (PostgreSQL) one migration holds
MIGRATION_WAIT_S = 300  # how long a worker waits for another's migration


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; for SQLite, WAL + foreign keys on every connection and the folder made.

    A statement waits at most `LOCK_WAIT_MS` for a lock another connection holds (SQLite's
    busy timeout, PostgreSQL's ``lock_timeout``), then fails: a caller that must not lose
    what it was writing keeps it and retries, rather than hanging for as long as the lock.
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database not in (None, "", ":memory:"):
        private_dir(Path(parsed.database).parent)
        private_file(Path(parsed.database))  # its -wal and -shm files take its mode
    if parsed.get_dialect().driver == "asyncpg":
        settings = {"lock_timeout": str(LOCK_WAIT_MS)}
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args["server_settings"] = settings | connect_args.get("server_settings", {})
    engine = _create_async_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """True when the database answers a trivial query (the readiness probe); raises otherwise."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
    return True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")  # writers of several processes wait
    cursor.close()


def alembic_config() -> Config:
    """Programmatic Alembic config: no alembic.ini needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


async def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (Alembic `upgrade head`)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # DDL is transactional there
                await connection.execute(text(f"SET LOCAL lock_timeout = '{MIGRATION_WAIT_S}s'"))
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                         {"key": MIGRATION_LOCK})
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
