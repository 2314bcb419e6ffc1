"""Login throttling: sliding windows of failed attempts, and a growing delay per user.

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

    def count(self, key: str, now: float) -> int:
        """`key`'s failures inside the window."""
        return len(self._prune(key, now))

    def fail(self, key: str, now: float) -> None:
        if len(self._failures) >= SWEEP_AT:
            for stale in list(self._failures):
                self._prune(stale, now)
        failures = self._prune(key, now)
        failures.append(now)
        self._failures[key] = failures

    def take_back(self, key: str, at: float) -> None:
        """Forget one failure of `key` counted at `at` (it turned out not to be one)."""
        failures = self._failures.get(key)
        if failures is not None and at in failures:
            failures.remove(at)
            if not failures:
                del self._failures[key]

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
    """Failed logins, limited so that a burst cannot pass the limits and nobody locks a user
    out from an address that is not theirs.

    - 5 failures of one user *from one address* in 5 minutes lock that pair (the owner logs
      in from elsewhere);
    - 20 failures from one address, over any names, lock that address;
    - each failure of a user, from any address, holds back its answer longer: `delay_base_s`
      doubling per failure in the window, at most `delay_cap_s`. The right password is never
      held back.

    `admit` checks and counts an attempt in one step, with no await in between: every
    attempt counts as a failure until `succeeded` takes it back, so parallel attempts cannot
    all pass a check none of them has counted yet.
    """

    per_user_address: SlidingWindow = field(default_factory=lambda: SlidingWindow(5, 300.0))
    per_address: SlidingWindow = field(default_factory=lambda: SlidingWindow(20, 300.0))
    per_user: SlidingWindow = field(default_factory=lambda: SlidingWindow(1_000_000, 300.0))
    delay_base_s: float = 0.25
    delay_cap_s: float = 8.0

    def admit(self, user: str, address: str, now: float) -> int:
        """0 with the attempt counted as failed, or whole seconds to wait (for a Retry-After
        header) with nothing counted."""
        pair = _pair(user, address)
        wait = max(self.per_user_address.retry_after(pair, now),
                   self.per_address.retry_after(address, now))
        if wait > 0:
            return math.ceil(wait)
        self.per_user_address.fail(pair, now)
        self.per_address.fail(address, now)
        return 0

    def failed(self, user: str, now: float) -> float:
        """The admitted attempt was wrong: seconds to hold its answer back."""
        key = user.casefold()
        self.per_user.fail(key, now)
        return min(self.delay_cap_s, self.delay_base_s * 2 ** (self.per_user.count(key, now) - 1))

    def withdraw(self, user: str, address: str, admitted_at: float) -> None:
        """The attempt admitted at `admitted_at` was not checked: it does not count."""
        self.per_user_address.take_back(_pair(user, address), admitted_at)
        self.per_address.take_back(address, admitted_at)

    def succeeded(self, user: str, address: str, admitted_at: float) -> None:
        """The right password: the user's failures (from this address and overall) are
        forgotten; the address's failures over other names stay."""
        self.per_user_address.clear(_pair(user, address))
        self.per_address.take_back(address, admitted_at)
        self.per_user.clear(user.casefold())


def _pair(user: str, address: str) -> str:
    return f"{user.casefold()}\x00{address}"
