"""The live event stream: in-process publish/subscribe for the dashboard (WebSocket/SSE).

`publish` never blocks and never fails the publisher: each subscriber has a bounded queue, and a
subscriber that falls behind loses its oldest events (counted in `LiveHub.dropped` and in its
`Subscription.dropped`, so a stream can catch up from the stored backlog,
`alerts.sql.live_backlog`). Events are plain JSON-able dicts with a ``type`` key and, once
stored, an ``id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from typing import Any

Event = dict[str, Any]
Filter = Callable[[Event], bool]


class LiveHub:
    def __init__(
        self, queue_size: int = 1000, tally: Callable[[Event], None] | None = None
    ) -> None:
        self._queue_size = queue_size
        self._subscriptions: dict[Subscription, Filter | None] = {}
        self._tally = tally  # counts every event for the metrics (`alerts.channels.tally`)
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber whose filter accepts it."""
        if self._tally is not None:
            self._tally(event)
        for subscription, accept in self._subscriptions.items():
            if accept is not None and not accept(event):
                continue
            if subscription.offer(event):
                self.dropped += 1

    def subscribe(self, accept: Filter | None = None) -> Subscription:
        """Events published from now on (matching `accept`); registered before this returns.

        Use as ``async for event in hub.subscribe(f)``, or ``with hub.subscribe(f) as events``
        to unsubscribe deterministically.
        """
        subscription = Subscription(
            asyncio.Queue(self._queue_size), lambda: self._subscriptions.pop(subscription, None)
        )
        self._subscriptions[subscription] = accept
        return subscription


class Subscription:
    """An async iterator over one subscriber's queue; `close` unsubscribes."""

    def __init__(self, queue: asyncio.Queue[Event], close: Callable[[], object]) -> None:
        self._queue = queue
        self.close = close
        self.dropped = 0  # events lost because this subscriber fell behind

    def offer(self, event: Event) -> bool:
        """Queue `event`, dropping the oldest queued one when full; whether one was dropped."""
        dropped = self._queue.full()
        if dropped:
            with suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)
        return dropped

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
