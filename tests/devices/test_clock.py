"""`now_ms`: the platform's wall clock in epoch milliseconds."""

from __future__ import annotations

import time

from devices.clock import now_ms


def test_now_ms_is_the_wall_clock_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = now_ms()
    after = time.time_ns() // 1_000_000

    assert isinstance(now, int) and before <= now <= after
