"""Which of the workers started for one partition ingests it: the leader; the others wait.

Two (or more) workers with the same `--partition` form a hot standby pair: each serves the API,
the live stream and dispatch at once, but only the one holding the partition's lease ingests
and runs its engine. The lease is a PostgreSQL session advisory lock, held on a connection of
its own: when the leader's process dies, its connection closes and the server releases the
lock, so a standby takes it within `poll_s`, restores the engine from what was stored (the
newest readings, the open alerts) and connects to the broker under the partition's client id,
resuming the leader's persistent session: every message the leader had not acknowledged is
delivered again, and the broker drops a connection that still held that client id (a leader
that is only cut off from the database). A leader that loses its connection to the database
stops (`LeaseLost`): its service manager starts it again, as a standby.

Why not a shared subscription (`$share/<group>/…`) between the pair: the broker would split
the partition's messages between two engines, each seeing half of every series (windows,
rates and `for` timers on half the readings, and devices "offline" in each engine for want of
the readings the other got). A passive standby keeps one engine per partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)
POLL_S = 1.0
_LEASE_SPACE = 0x7577  # the lease keys' high bits (the migration and book locks use others)


class LeaseLost(RuntimeError):
    """The leader's database connection broke: another worker may now lead the partition."""


class PartitionLease:
    """The lease of partition `name` over `engine`'s PostgreSQL database."""

    def __init__(self, engine: AsyncEngine, name: str, poll_s: float = POLL_S) -> None:
        self.name = name
        self.key = (_LEASE_SPACE << 32) | zlib.crc32(name.encode())
        self._engine, self._poll_s = engine, poll_s
        self._connection: AsyncConnection | None = None
        self.leading = False
        self.took_over = False  # another worker led while this one waited

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this worker leads (True) or `stop` is set (False)."""
        waited = False
        while not stop.is_set():
            try:
                got = await self._try()
            except (DBAPIError, OperationalError, OSError) as exc:  # a blip: keep standing by
                log.warning("partition %s: cannot ask for the lease (%s); trying again",
                            self.name, exc)
                got = False
            if got:
                log.info("partition %s: leading%s", self.name, " (took over)" if waited else "")
                self.leading, self.took_over = True, waited
                return True
            if not waited:
                log.info("partition %s: standing by (another worker leads it)", self.name)
                waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_s)
        return False

    async def hold(self, stop: asyncio.Event) -> None:
        """Check the lease's connection every `poll_s` until `stop`.

        Raises:
            LeaseLost: the connection broke (the server has released the lock).
        """
        assert self._connection is not None, "not leading"
        while not stop.is_set():
            try:  # bounded: a half-open connection must not hide a lost lease
                await asyncio.wait_for(self._check(), max(5.0, 3 * self._poll_s))
            except (DBAPIError, OperationalError, OSError, TimeoutError) as exc:
                self.leading = False
                raise LeaseLost(f"partition {self.name}: the lease's database connection "
                                f"broke ({exc!r}); stopping, another worker may lead") from exc
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_s)

    async def _check(self) -> None:
        assert self._connection is not None
        await self._connection.execute(text("SELECT 1"))
        await self._connection.commit()  # not left idle in a transaction between checks

    async def release(self) -> None:
        """Give the lease up (closing its connection releases the lock)."""
        self.leading = False
        if self._connection is not None:
            with contextlib.suppress(DBAPIError, OperationalError, OSError):
                # the connection goes back to the pool: the lock must not go with it
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                               {"key": self.key})
                await self._connection.commit()
            with contextlib.suppress(DBAPIError, OperationalError, OSError):
                await self._connection.close()
            self._connection = None

    async def _try(self) -> bool:
        connection = await self._engine.connect()
        try:
            got = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                          {"key": self.key})
            await connection.commit()  # the session lock outlives the transaction
        except BaseException:
            await connection.close()
            raise
        if got:
            self._connection = connection
            return True
        await connection.close()
        return False
