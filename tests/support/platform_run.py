"""The whole platform in the test's own process: opened, running and ready, then stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from urbanwatch.platform import Platform
from urbanwatch.settings import Settings


@contextlib.asynccontextmanager
async def running(settings: Settings, *, serve_api: bool = False) -> AsyncIterator[Platform]:
    """A `Platform` for `settings` whose ingestor is connected; stopped (and awaited) after."""
    stop = asyncio.Event()
    async with Platform(settings, serve_api=serve_api) as platform:
        assert platform.ingestor is not None
        runner = asyncio.create_task(platform.run(stop))
        try:
            await platform.ingestor.wait_ready(timeout_s=20)
            yield platform
        finally:
            stop.set()
            await runner
