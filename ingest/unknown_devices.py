"""Devices the ingest registry does not know yet: looked up before their messages are refused.

A device provisioned while the platform runs (by the CLI in another process, or the API) may
publish before the periodic registry refresh has seen it. Rather than dead-letter its first
readings, the ingestor asks `find` (the SQL store) about senders it does not know, and about
the children a gateway's batch names when one of them is unknown; when some turn out to be
stored, `on_found` loads them into the registry and their messages are decoded as usual.
Misses are remembered for `forget_after_ms` (at most `max_remembered` of them), so a flood of
messages from unknown ids costs one query per id and period, not one per message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection

from devices.clock import now_ms

Find = Callable[[Collection[str]], Awaitable[set[str]]]  # ids → those that are stored devices
Found = Callable[[set[str]], Awaitable[None]]


class UnknownDevices:
    def __init__(
        self, find: Find, on_found: Found, *, forget_after_ms: int = 5_000,
        max_remembered: int = 10_000, clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._find, self._on_found, self._clock_ms = find, on_found, clock_ms
        self._forget_after_ms, self._max_remembered = forget_after_ms, max_remembered
        self._misses: OrderedDict[str, int] = OrderedDict()  # id → when it was not found

    @property
    def remembered(self) -> int:
        return len(self._misses)

    async def look_up(self, device_ids: Collection[str]) -> set[str]:
        """Those of `device_ids` found stored (and handed to `on_found`); misses are cached."""
        now = self._clock_ms()
        self._forget(now)
        asked = {i for i in device_ids if i not in self._misses}
        if not asked:
            return set()
        found = await self._find(asked)
        for device_id in asked - found:
            self._misses[device_id] = now
        while len(self._misses) > self._max_remembered:
            self._misses.popitem(last=False)
        if found:
            await self._on_found(found)
        return found

    def _forget(self, now: int) -> None:
        """Drop misses older than `forget_after_ms` (oldest first: insertion order is time)."""
        while self._misses:
            device_id, since = next(iter(self._misses.items()))
            if now - since < self._forget_after_ms:
                return
            del self._misses[device_id]
