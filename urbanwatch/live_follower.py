"""The live stream of a worker that shares its alert store with others: events come from SQL.

Partitioned workers each raise their own districts' alerts, and a caller's live stream may be
served by any of them. Every live event is a row of the live backlog before it is published
(`alerts.sql.live_backlog`), with ids in commit order across processes, so each worker reads
the rows after the last one it published, every `interval_s`, and publishes them to its own
`LiveHub` in id order: the events of every worker, its own included, once each. A stream's
resume logic (`api.live_resume`) relies on that order, which is why a worker in this mode does
not also publish its own events straight after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.sql import live_backlog

INTERVAL_S = 0.2


class LiveFollower:
    """Publishes the stored live events of every process to `hub`, from start-up on."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], hub: LiveHub,
                 interval_s: float = INTERVAL_S) -> None:
        self._sessions, self._hub, self._interval_s = sessions, hub, interval_s
        self._cursor: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`; a failed read ends the task (its supervisor restarts it, the cursor
        stays, so nothing is skipped or published twice)."""
        if self._cursor is None:
            self._cursor = (await live_backlog.span(self._sessions)).newest or 0
        while not stop.is_set():
            async for event in live_backlog.after(self._sessions, self._cursor):
                self._hub.publish(event)
                self._cursor = event["id"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
