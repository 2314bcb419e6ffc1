"""Supervision of the platform's long-running tasks: none may die silently.

    health = TaskHealth()
    await supervise("rules", lambda: judge.run(stop), stop, health)

A task that raises is logged with its traceback, counted (`TaskHealth.restarts`, exposed on
`/metrics`), marked down (`/readyz` reports it) and started again after an exponential backoff;
it is marked up again (and the backoff reset) once it has run for `healthy_after_s` without
failing. A task that returns while `stop` is not set is restarted the same way. Cancellation
is never swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from ingest.backoff import Backoff

log = logging.getLogger(__name__)
HEALTHY_AFTER_S = 5.0


class TaskHealth:
    """Up/down and restart counts of every supervised task, read by `/readyz` and `/metrics`."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}
        self.restarts: Counter[str] = Counter()
        self.last_error: dict[str, str] = {}

    def failing(self) -> list[str]:
        return sorted(name for name, up in self.up.items() if not up)

    async def all_up(self) -> bool:
        """The readiness probe: every supervised task is running."""
        return not self.failing()


async def supervise(
    name: str, factory: Callable[[], Awaitable[object]], stop: asyncio.Event,
    health: TaskHealth, *, backoff: Backoff | None = None,
    healthy_after_s: float = HEALTHY_AFTER_S,
) -> None:
    """Run `factory()` until `stop` is set, restarting it (with backoff) whenever it fails."""
    backoff = backoff or Backoff(0.5, 30.0)
    health.up[name] = True

    def recovered() -> None:
        health.up[name] = True
        backoff.reset()

    while not stop.is_set():
        recover = asyncio.get_running_loop().call_later(healthy_after_s, recovered)
        try:
            await factory()
        except Exception as exc:
            log.exception("task %s failed; restarting it", name)
            health.last_error[name] = f"{type(exc).__name__}: {exc}"
        else:
            if stop.is_set():
                break
            log.error("task %s ended unexpectedly; restarting it", name)
            health.last_error[name] = "ended unexpectedly"
        finally:
            recover.cancel()
        health.up[name] = False
        health.restarts[name] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff.next_s())
