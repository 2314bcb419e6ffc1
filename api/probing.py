"""Asking the platform's dependencies whether they answer, for `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

Probe = Callable[[], Awaitable[bool]]
PROBE_TIMEOUT_S = 2.0


async def probe_all(probes: Mapping[str, Probe]) -> dict[str, bool]:
    """Each probe's answer, asked at once; one that fails or takes too long says False."""
    names = list(probes)
    results = await asyncio.gather(*(_safe(probes[n]) for n in names))
    return dict(zip(names, results, strict=True))


async def _safe(probe: Probe) -> bool:
    try:
        return bool(await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT_S))
    except Exception:  # a failing probe means "down", whatever it raised
        return False
