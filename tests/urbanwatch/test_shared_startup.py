"""What every worker does at start-up, done by several at once on one fresh PostgreSQL database
and one fresh InfluxDB database: migrations and the time-series schema come out whole, once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from ingest.timeseries.client import InfluxClient
from urbanwatch.database import create_engine, migrate
from urbanwatch.services.influxd import Influxd

WORKERS = 4


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_workers_migrating_at_once_leave_one_schema_at_head(db_url: str) -> None:
    await asyncio.gather(*(migrate(db_url) for _ in range(WORKERS)))
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))
                        ).scalars().all()  # fmt: skip
            tables = await connection.scalar(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'outbox'"))
    finally:
        await engine.dispose()
    assert len(versions) == 1 and tables == 1


async def test_workers_creating_the_influx_schema_at_once_all_succeed(influxd: Influxd) -> None:
    clients = [InfluxClient(influxd.url, f"test_{uuid.uuid4().hex[:12]}")]
    clients += [InfluxClient(influxd.url, clients[0].database) for _ in range(WORKERS - 1)]
    try:
        await asyncio.gather(*(c.ensure_schema("30d", "365d") for c in clients))
        policies = await clients[0].query(f'SHOW RETENTION POLICIES ON "{clients[0].database}"')
        queries = await clients[0].query("SHOW CONTINUOUS QUERIES")
    finally:
        await clients[0].drop_database()
        for client in clients:
            await client.aclose()
    names = sorted(row[0] for s in policies for row in s["values"])
    assert names == ["autogen", "downsampled", "raw"]
    mine = [s for s in queries if s.get("name") == clients[0].database]
    assert len(mine[0]["values"]) == 1
