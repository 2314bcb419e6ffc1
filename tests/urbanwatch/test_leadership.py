"""`PartitionLease` over a real PostgreSQL: one leader per partition, a standby that takes
over, and a database that cannot be reached is waited out rather than fatal."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from tests.support.polling import eventually
from tests.support.postgres import pg_server  # noqa: F401  (SQL fixture)
from urbanwatch.database import create_engine
from urbanwatch.leadership import PartitionLease
from urbanwatch.services.ports import free_port


async def test_one_leads_the_other_takes_over_when_it_lets_go(
    pg_server: str, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    engine = create_engine(pg_server)
    name = f"p-{uuid.uuid4().hex[:8]}"
    first, second = PartitionLease(engine, name, 0.05), PartitionLease(engine, name, 0.05)
    stop = asyncio.Event()
    try:
        assert await first.acquire(stop) and not first.took_over
        with caplog.at_level(logging.INFO, logger="urbanwatch.leadership"):
            waiting = asyncio.create_task(second.acquire(stop))
            await eventually(lambda: "standing by" in caplog.text, "the second standing by")
        assert not waiting.done() and not second.leading
        await first.release()
        assert await asyncio.wait_for(waiting, 10)
        assert second.leading and second.took_over  # its own older state is stale
    finally:
        stop.set()
        await first.release()
        await second.release()
        await engine.dispose()


async def test_an_unreachable_database_is_waited_out_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    lease, stop = PartitionLease(engine, "p-down", 0.05), asyncio.Event()
    try:
        with caplog.at_level(logging.WARNING, logger="urbanwatch.leadership"):
            trying = asyncio.create_task(lease.acquire(stop))
            await eventually(lambda: "cannot ask for the lease" in caplog.text,
                             "the failed attempt logged")
            assert not trying.done()  # still standing by, not crashed
            stop.set()
            assert await asyncio.wait_for(trying, 10) is False
    finally:
        await engine.dispose()
