"""The dispatcher: drains the outbox through the channels, with retries, until told to stop.

Each claimed row is sent once per round; a retryable failure is tried again after an
exponential backoff with jitter, until the row's give-up time (counted from its first attempt)
passes; a non-retryable failure gives up at once. Every attempt and the final outcome are
written on the incident's timeline (actor ``dispatcher``) and the outbox row in one
transaction. Cancelling `run` between attempts loses nothing: the row is still pending.

One receiver cannot hold up the others: each team's claimed rows are sent in order in its own
lane, lanes of different teams run concurrently (at most `parallel` at once), and `run` keeps
claiming while a slow lane works, up to `batch` rows in flight. A channel that raises anything
but `ChannelError` fails that one attempt (retryable, logged with its traceback).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.base import Channel, ChannelError
from alerts.channels.live import LiveHub
from alerts.model import TimelineEntry, TimelineKind
from alerts.sql import outbox
from alerts.sql.outbox import Delivery
from alerts.sql.repository import timeline_row
from alerts.sql.tables import TimelineRow
from devices.clock import now_ms

log = logging.getLogger(__name__)
ACTOR = "dispatcher"


@dataclass(frozen=True)
class RetryPolicy:
    """Delay after n failed attempts: ``min(max, base * factor**(n-1))``, minus up to `jitter`."""

    base_ms: int = 1_000
    factor: float = 2.0
    max_delay_ms: int = 5 * 60_000
    jitter: float = 0.5
    give_up_after_ms: int = 60 * 60_000

    def delay_ms(self, attempts: int, random_01: float) -> int:
        """The wait after `attempts` failed attempts; `random_01` in [0, 1) spreads retries."""
        raw = min(self.max_delay_ms, self.base_ms * self.factor ** max(0, attempts - 1))
        return max(1, round(raw * (1 - self.jitter * random_01)))


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        *,
        retry: RetryPolicy | None = None,
        clock_ms: Callable[[], int] = now_ms,
        random_01: Callable[[], float] = random.random,
        hub: LiveHub | None = None,
        poll_s: float = 0.2,
        batch: int = 50,
        lease_ms: int = 60_000,
        parallel: int = 8,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._retry = retry or RetryPolicy()
        self._clock_ms = clock_ms
        self._random_01 = random_01
        self._hub = hub
        self._poll_s = poll_s
        self._batch = batch
        self._lease_ms = lease_ms
        self._parallel = asyncio.Semaphore(parallel)
        self._lanes: dict[str, asyncio.Task[None]] = {}  # team → its newest lane
        self._in_flight = 0
        self._lane_error: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; idle rounds wait `poll_s` (or until `stop`).

        Lanes still sending when `stop` comes are cancelled: their rows stay pending and are
        claimed again once their lease ends. A lane that failed (its SQL) ends `run` with
        that error.
        """
        try:
            while not stop.is_set():
                if self._lane_error is not None:
                    raise self._lane_error
                room = self._batch - self._in_flight
                claimed = await self._claim(room) if room > 0 else []
                self._start_lanes(claimed)
                if not claimed:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._poll_s)
        finally:
            lanes = list(self._lanes.values())
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            self._lane_error = None

    async def drain_once(self) -> int:
        """Claim the rows due now and attempt each once; returns how many were attempted."""
        claimed = await self._claim(self._batch)
        await asyncio.gather(*self._start_lanes(claimed))
        return len(claimed)

    async def _claim(self, limit: int) -> list[Delivery]:
        return await outbox.claim(
            self._sessions,
            self._clock_ms(),
            limit=limit,
            lease_ms=self._lease_ms,
            give_up_after_ms=self._retry.give_up_after_ms,
        )

    def _start_lanes(self, claimed: list[Delivery]) -> list[asyncio.Task[None]]:
        """One lane per team, queued behind that team's lane still running (if any)."""
        by_team: dict[str, list[Delivery]] = {}
        for delivery in claimed:
            by_team.setdefault(delivery.team_id, []).append(delivery)
        started = []
        for team, rows in by_team.items():
            self._in_flight += len(rows)
            lane = asyncio.create_task(self._lane(rows, self._lanes.get(team)))
            lane.add_done_callback(partial(self._lane_done, team))
            self._lanes[team] = lane
            started.append(lane)
        return started

    async def _lane(self, rows: list[Delivery], after: asyncio.Task[None] | None) -> None:
        if after is not None:  # the team's earlier rows go first
            await asyncio.wait([after])
        async with self._parallel:
            for delivery in rows:
                try:
                    await self._attempt(delivery)
                finally:
                    self._in_flight -= 1

    def _lane_done(self, team: str, lane: asyncio.Task[None]) -> None:
        if self._lanes.get(team) is lane:
            del self._lanes[team]
        if not lane.cancelled() and lane.exception() is not None:
            self._lane_error = lane.exception()

    async def _attempt(self, delivery: Delivery) -> None:
        channel = self._channels.get(delivery.channel.partition(".")[0])  # webhook.1 → webhook
        try:
            if channel is None:
                reason = f"no channel {delivery.channel!r} configured"
                raise ChannelError(delivery.channel, reason, retryable=False)
            status = await channel.send(delivery)
        except ChannelError as exc:
            await self._failed(delivery, exc)
        except Exception as exc:  # a channel bug fails this attempt, not the dispatcher
            log.exception("%s raised on outbox row %d", delivery.channel, delivery.id)
            reason = f"unexpected {type(exc).__name__}"
            await self._failed(delivery, ChannelError(delivery.channel, reason, retryable=True))
        else:
            await self._sent(delivery, status)

    async def _sent(self, d: Delivery, status: outbox.Status) -> None:
        now_ms = self._clock_ms()
        async with self._sessions.begin() as session:
            await outbox.mark_sent(session, d.id, now_ms, status)
            await self._note(
                session, d, now_ms, f"{d.channel} {status.value} (attempt {d.attempts + 1})"
            )
        self._publish(d, status.value, now_ms)

    async def _failed(self, d: Delivery, exc: ChannelError) -> None:
        now_ms = self._clock_ms()
        attempt = d.attempts + 1
        next_ms = now_ms + self._retry.delay_ms(attempt, self._random_01())
        async with self._sessions.begin() as session:
            if exc.retryable and next_ms < d.give_up_ms:
                await outbox.mark_retry(session, d.id, next_ms, exc.reason)
                detail = f"{d.channel} attempt {attempt} failed: {exc.reason}; retrying"
                outcome = "retrying"
            else:
                await outbox.mark_failed(session, d.id, now_ms, exc.reason)
                detail = f"{d.channel} gave up after {attempt} attempt(s): {exc.reason}"
                outcome = "failed"
            await self._note(session, d, now_ms, detail)
        self._publish(d, outcome, now_ms)

    async def _note(self, session: AsyncSession, d: Delivery, now_ms: int, detail: str) -> None:
        if d.incident_id is None:
            return
        entry = TimelineEntry(now_ms, ACTOR, TimelineKind.NOTIFIED, f"{detail} [{d.key}]")
        await session.execute(insert(TimelineRow), [timeline_row(d.incident_id, entry)])

    def _publish(self, d: Delivery, outcome: str, now_ms: int) -> None:
        if self._hub is not None:
            self._hub.publish(
                {
                    "type": "dispatch",
                    "outcome": outcome,
                    "key": d.key,
                    "channel": d.channel,
                    "team_id": d.team_id,
                    "incident_id": d.incident_id,
                    "ts_ms": now_ms,
                }
            )
