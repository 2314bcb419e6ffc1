"""The API's clock and its one conversion of request timestamps to epoch milliseconds."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi import HTTPException

NAIVE_TIMESTAMP = "timestamps need a time zone, e.g. 2026-11-23T08:00:00Z"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def epoch_ms(moment: datetime) -> int:
    """`moment` in epoch milliseconds; a timestamp without a time zone is a 422."""
    if moment.tzinfo is None:
        raise HTTPException(422, NAIVE_TIMESTAMP)
    return round(moment.timestamp() * 1000)
