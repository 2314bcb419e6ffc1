"""The live event stream: in-process publish/subscribe for the dashboard (WebSocket/SSE).

`publish` never blocks and never fails the publisher: each subscriber has a bounded queue, and a
subscriber that falls behind loses its oldest events (the count is in `LiveHub.dropped`), since
a live view wants the newest state. Events are plain JSON-able dicts with a ``type`` key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from typing import Any

Event = dict[str, Any]
Filter = Callable[[Event], bool]


class LiveHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._queues: dict[asyncio.Queue[Event], Filter | None] = {}
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber whose filter accepts it."""
        for queue, accept in self._queues.items():
            if accept is not None and not accept(event):
                continue
            if queue.full():
                with suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    def subscribe(self, accept: Filter | None = None) -> Subscription:
        """Events published from now on (matching `accept`); registered before this returns.

        Use as ``async for event in hub.subscribe(f)``, or ``with hub.subscribe(f) as events``
        to unsubscribe deterministically.
        """
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues[queue] = accept
        return Subscription(queue, lambda: self._queues.pop(queue, None))


class Subscription:
    """An async iterator over one subscriber's queue; `close` unsubscribes."""

    def __init__(self, queue: asyncio.Queue[Event], close: Callable[[], object]) -> None:
        self._queue = queue
        self.close = close

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
