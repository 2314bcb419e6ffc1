"""Public holidays of the simulated city: on these days roads and noise follow the weekend's
pattern.

Days off of China's State Council holiday notices, from memory (verify before relying on
them; make-up working days on weekends are not modelled). A run may add days of its own
(`City.holidays`), e.g. a local festival.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np


def _days(first: str, n: int) -> list[date]:
    start = date.fromisoformat(first)
    return [start + timedelta(days=k) for k in range(n)]


PUBLIC_HOLIDAYS: frozenset[date] = frozenset(
    _days("2025-01-01", 1) + _days("2025-01-28", 8) + _days("2025-04-04", 3)
    + _days("2025-05-01", 5) + _days("2025-05-31", 3) + _days("2025-10-01", 8)
    + _days("2026-01-01", 3) + _days("2026-02-15", 9) + _days("2026-04-04", 3)
    + _days("2026-05-01", 5) + _days("2026-06-19", 3) + _days("2026-09-25", 3)
    + _days("2026-10-01", 7) + _days("2027-01-01", 3)
)
_EPOCH = date(1970, 1, 1)


def holidays_between(
    first: date, last: date, days: frozenset[date] = PUBLIC_HOLIDAYS
) -> list[date]:
    return sorted(d for d in days if first <= d <= last)


def day_numbers(days: frozenset[date]) -> np.ndarray:
    """Days since 1970-01-01 of `days`, sorted (for `np.isin` on local day numbers)."""
    return np.array(sorted((d - _EPOCH).days for d in days), dtype=np.int64)
