"""Password checks run on a pool of their own, bounded: past its workers and queue a check is
refused at once (the login answers 503) rather than piling up, and the pool serves again once
its checks are done."""

from __future__ import annotations

import asyncio

from api.security.passwords import PasswordPool, PasswordPoolBusyError, hash_password


async def test_checks_past_the_pools_capacity_are_refused_and_it_recovers() -> None:
    pool = PasswordPool(workers=1, queue=2)
    stored = hash_password("the right one")
    results = await asyncio.gather(*(pool.verify(stored, f"guess {i}") for i in range(5)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, PasswordPoolBusyError)]
    assert results[:3] == [False] * 3 and len(refused) == 2  # 1 worker + 2 waiting
    assert pool.verified == 3
    assert await pool.verify(stored, "the right one") is True

