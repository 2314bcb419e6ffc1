"""Login throttling: sliding windows of failed attempts, per user name and per address.

Pure logic over an explicit `now` (seconds) so it can be table-tested; the process keeps one
`LoginThrottle` (attempts are not shared between API processes).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

SWEEP_AT = 10_000  # keys held before stale ones are dropped


@dataclass
class SlidingWindow:
    """At most `limit` failures per key in any `window_s` seconds."""

    limit: int
    window_s: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        failures = self._prune(key, now)
        if len(failures) < self.limit:
            return 0.0
        return failures[len(failures) - self.limit] + self.window_s - now

    def fail(self, key: str, now: float) -> None:
        if len(self._failures) >= SWEEP_AT:
            for stale in list(self._failures):
                self._prune(stale, now)
        failures = self._prune(key, now)
        failures.append(now)
        self._failures[key] = failures

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float]:
        """`key`'s failures inside the window (a key with none left is forgotten)."""
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures


@dataclass
class LoginThrottle:
    """5 failures per user name or 20 per address in 5 minutes lock that one out for a while;
    a successful login clears its user name's failures (not its address's)."""

    per_user: SlidingWindow = field(default_factory=lambda: SlidingWindow(5, 300.0))
    per_address: SlidingWindow = field(default_factory=lambda: SlidingWindow(20, 300.0))

    def retry_after(self, user: str, address: str, now: float) -> int:
        """Whole seconds to wait (for a Retry-After header); 0 = go ahead."""
        wait = max(self.per_user.retry_after(user.casefold(), now),
                   self.per_address.retry_after(address, now))
        return math.ceil(wait)

    def failed(self, user: str, address: str, now: float) -> None:
        self.per_user.fail(user.casefold(), now)
        self.per_address.fail(address, now)

    def succeeded(self, user: str) -> None:
        self.per_user.clear(user.casefold())
