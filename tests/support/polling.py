"""Waiting for something that happens elsewhere (another thread, process or server)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import pytest

WAIT_S = 30.0


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = WAIT_S,
    interval_s: float = 0.05,
) -> None:
    """Poll `check()` (plain or async) until it holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)
