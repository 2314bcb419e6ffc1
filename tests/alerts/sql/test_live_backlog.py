"""The live stream's backlog: ids in order and never reused, pruning to its bounds, paged reads
and ids that follow commit order under concurrent writers; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.sql import live_backlog
from alerts.sql.live_backlog import Retention, Span
from tests.alerts.conftest import T0

HOUR_MS = 3600_000
Sessions = async_sessionmaker[AsyncSession]


async def store(sessions: Sessions, count: int, now_ms: int = T0) -> list[int]:
    async with sessions.begin() as session:
        events = await live_backlog.append(
            session, [{"type": "note", "n": n} for n in range(count)], now_ms
        )
    return [e["id"] for e in events]


async def stored_ids(sessions: Sessions) -> list[int]:
    return [e["id"] async for e in live_backlog.after(sessions, 0)]


async def test_append_gives_increasing_ids_and_keeps_the_event(sessions: Sessions) -> None:
    assert await live_backlog.span(sessions) == Span(None, None)
    first = await store(sessions, 3)
    second = await store(sessions, 2)
    ids = first + second
    assert ids == sorted(ids) and len(set(ids)) == 5
    replayed = [e async for e in live_backlog.after(sessions, first[0])]
    assert replayed == [{"id": i, "type": "note", "n": n}
                        for i, n in zip(ids[1:], [1, 2, 0, 1], strict=True)]
    assert await live_backlog.span(sessions) == Span(ids[0], ids[-1])


async def test_a_rolled_back_transaction_leaves_no_event(sessions: Sessions) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await live_backlog.append(session, [{"type": "note"}], T0)
            raise RuntimeError("the state change failed")
    assert await stored_ids(sessions) == []


async def test_prune_keeps_the_newest_events_up_to_the_count(sessions: Sessions) -> None:
    ids = await store(sessions, 12)
    assert await live_backlog.prune(sessions, Retention(max_events=5), T0) == 7
    assert await stored_ids(sessions) == ids[-5:]
    assert await live_backlog.prune(sessions, Retention(max_events=5), T0) == 0


async def test_prune_drops_old_events_but_never_the_newest(sessions: Sessions) -> None:
    old = await store(sessions, 3, T0)
    new = await store(sessions, 2, T0 + 2 * HOUR_MS)
    retention = Retention(max_events=100, max_age_ms=HOUR_MS)
    assert await live_backlog.prune(sessions, retention, T0 + 2 * HOUR_MS) == 3
    assert await stored_ids(sessions) == new
    assert await live_backlog.prune(sessions, retention, T0 + 9 * HOUR_MS) == 1
    assert await stored_ids(sessions) == new[-1:]  # tells a resuming client where it stands
    assert old[-1] < new[0]


async def test_ids_are_never_reused_after_pruning(sessions: Sessions) -> None:
    ids = await store(sessions, 4)
    await live_backlog.prune(sessions, Retention(max_events=1), T0)
    later = await store(sessions, 2)
    assert min(later) > max(ids)


async def test_after_reads_past_a_page(sessions: Sessions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_backlog, "PAGE", 4)
    ids = await store(sessions, 10)
    assert [e["id"] async for e in live_backlog.after(sessions, ids[1])] == ids[2:]


async def test_concurrent_writers_commit_in_id_order(sessions: Sessions) -> None:
    """A reader that saw id N has seen every id below N: a writer holding the next id commits
    before any later one, so a resuming stream can drop live events it has already passed."""
    commits: list[int] = []
    first_stored = asyncio.Event()

    async def writer(delay_s: float, wait: bool) -> None:
        if wait:
            await first_stored.wait()
        async with sessions.begin() as session:
            (event,) = await live_backlog.append(session, [{"type": "note"}], T0)
            first_stored.set()
            await asyncio.sleep(delay_s)  # the first writer commits late
        commits.append(event["id"])

    await asyncio.gather(writer(0.3, wait=False), writer(0.0, wait=True))
    assert commits == sorted(commits)
