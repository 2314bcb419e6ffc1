"""The migrations build exactly the schema the code's tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
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
