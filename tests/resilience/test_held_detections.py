"""A detection the alert store refused survives a crash of `urbanwatch serve` (issue 11).

The store is locked by another connection (SQLite: an exclusive transaction; PostgreSQL: an
ACCESS EXCLUSIVE lock on the alerts table), so a red gas detection is held. Ingest has
acknowledged the reading and the engine's checkpoint records the rule firing, so after a
SIGKILL nothing would detect it again: only the held-detections journal brings it back, and
the restarted platform raises the red incident from it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from alerts.sql import repository
from rules.engine.snapshot import texts
from rules.engine.state import FIRING
from tests.support.platform_process import PlatformProcess, sample
from tests.support.polling import eventually
from tests.urbanwatch.test_platform_faults import GAS, publish_lel, register, write_lock
from urbanwatch.checkpoint import FILENAME as CHECKPOINT
from urbanwatch.checkpoint import load_checkpoint
from urbanwatch.database import create_engine, create_session_factory
from urbanwatch.detection_journal import FILENAME as JOURNAL
from urbanwatch.settings import Settings

GAS_RULE = "gas-lel"


@contextlib.asynccontextmanager
async def store_locked(db_url: str) -> AsyncIterator[None]:
    """Another client holding the alert store's lock until the block ends."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        with write_lock(str(url.database)):
            yield
        return
    holder = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await holder.close()


def checkpoint_fires(path: Path, rule_id: str) -> bool:
    """The saved engine state has `rule_id` firing on some series."""
    saved = load_checkpoint(path)
    if saved is None:
        return False
    snap, _ = saved
    k = texts(snap["rules.id"]).index(rule_id)
    return bool((snap[f"rule.{k}.state"] == FIRING).any())


async def incidents(db_url: str) -> list:
    engine = create_engine(db_url)
    try:
        async with create_session_factory(engine)() as session:
            return [incident for incident, _ in await repository.load_incidents(session)]
    finally:
        await engine.dispose()


@pytest.mark.timeout(240)
async def test_a_held_red_detection_is_raised_after_a_crash(
    settings: Settings, db_url: str, tmp_path: Path,
) -> None:
    settings.db.url = db_url
    await register(settings, GAS)
    process = PlatformProcess(settings, tmp_path / "serve.log")
    process.env["URBANWATCH_RULES__CHECKPOINT_S"] = "0.5"  # a checkpoint while it is held
    journal, checkpoint = settings.state_dir / JOURNAL, settings.state_dir / CHECKPOINT
    process.start()
    try:
        await process.wait_ready()
        async with store_locked(db_url):
            await asyncio.to_thread(publish_lel, settings, GAS, 64.0)  # 50 % LEL and up: red

            async def held() -> bool:
                return sample(await process.metrics(), "urbanwatch_alerts_held_detections") > 0

            await eventually(held, "the red detection held (metrics)", timeout_s=60)
            await eventually(journal.exists, "the held detection journaled")
            await eventually(lambda: checkpoint_fires(checkpoint, GAS_RULE),
                             "a checkpoint recording the gas rule firing")
            process.kill()
        assert await incidents(db_url) == []  # lost, but for the journal
        process.start()
        await process.wait_ready()

        async def raised() -> list:
            return await incidents(db_url)

        await eventually(raised, "the red incident raised after the restart", timeout_s=60)
        [incident] = await incidents(db_url)
        metrics = await process.metrics()
    finally:
        code = process.stop()
    assert code == 0, f"urbanwatch serve did not stop cleanly ({code}):\n{process.log_tail()}"
    assert incident.severity.name == "RED" and incident.devices == (GAS.id,)
    assert incident.team_id == "gas-emergency"
    assert sample(metrics, "urbanwatch_alerts_held_detections") == 0
    assert not journal.exists()
    assert "1 detections held when the platform stopped are stored first" in process.log_tail(400)
