"""The migrations build exactly the schema the code's tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

import alerts.store
import api.security.store
import devices.credential_store
import devices.store
from urbanwatch.database import create_engine, migrate

METADATA = [devices.store.metadata, alerts.store.metadata, api.security.store.metadata]


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    merged = MetaData()
    for metadata in METADATA:
        for table in metadata.tables.values():
            table.to_metadata(merged)
    return [d for d in compare_metadata(context, merged)
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
