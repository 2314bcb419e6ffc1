"""Alembic environment for urbanwatch's SQL schema (SQLite and PostgreSQL).

Run programmatically by `urbanwatch.database.migrate`, which hands in an open
connection; run by the `alembic` command (``alembic -c urbanwatch/migrations/alembic.ini
-x url=sqlite+aiosqlite:///x.db revision --autogenerate -m "..."``) it opens its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import alerts.sql.tables  # noqa: F401  (each table module registers its tables on the one base)
import api.security.store  # noqa: F401
import devices.credential_store
import devices.store  # noqa: F401
from devices.sql import metadata as target_metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        from urbanwatch.settings import load_settings

        url = load_settings().db_url
    return url


def _configure(**kwargs: Any) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(target_metadata=target_metadata, render_as_batch=True, **kwargs)


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_async())
    else:
        _run_on(connection)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
