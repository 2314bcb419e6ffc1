"""The platform's one wall-clock source: epoch milliseconds now.

Every package reads the time through `now_ms` (or takes it injected, as a `clock_ms`
argument defaulting to it), so a test can stand in for the clock and no two parts round the
time differently. It lives in `devices`, the lowest layer, because every package may import
`devices` and `devices` imports none of the others. Durations are measured with
`time.monotonic`/`perf_counter`, not with this clock.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch (UTC), truncated."""
    return time.time_ns() // 1_000_000
