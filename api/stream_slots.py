"""How many live streams (WebSocket and SSE together) one user or API key may hold open.

A stream holds a subscription, a backlog reader and a periodic access check for as long as it
lives; without a bound one stolen token could open thousands. A caller past the bound is
refused (`TooManyStreams`: a 429 on SSE, a 1008 close on the WebSocket) until one of its
streams ends. The count lives in this process, as the streams do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from api.security.principal import Principal


class TooManyStreams(Exception):
    """The caller holds `limit` open streams already."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} live streams per user or API key are open at once;"
                         " close one first")


class StreamSlots:
    """Open streams per principal, at most `limit` each."""

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self._open: Counter[tuple[str, str]] = Counter()

    @contextmanager
    def hold(self, caller: Principal) -> Iterator[None]:
        """One slot of `caller`'s for the block; `TooManyStreams` when none is free."""
        key = (caller.kind, caller.subject)
        if self._open[key] >= self.limit:
            raise TooManyStreams(self.limit)
        self._open[key] += 1
        try:
            yield
        finally:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]
