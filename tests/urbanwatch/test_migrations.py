"""The migrations build exactly the schema the code's tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

import alerts.sql.tables  # noqa: F401  (each table module registers its tables on the one base)
import api.security.store  # noqa: F401
import devices.credential_store
import devices.store  # noqa: F401
from devices.sql import metadata
from urbanwatch.database import create_engine, migrate


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata)
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


async def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


async def test_the_sqlite_database_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "urbanwatch.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    engine = create_engine(url)
    async with engine.begin() as connection:  # a write: the -wal and -shm files are made
        await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        made = sorted(p.name for p in path.parent.iterdir())
        modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()}
    await engine.dispose()
    assert made == ["urbanwatch.db", "urbanwatch.db-shm", "urbanwatch.db-wal"]
    assert set(modes.values()) == {0o600}
    assert path.parent.stat().st_mode & 0o777 == 0o700
