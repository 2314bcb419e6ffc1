"""The API's one conversion of request timestamps to epoch milliseconds.

The time now comes from `devices.clock.now_ms`, the platform's one wall clock.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import HTTPException

NAIVE_TIMESTAMP = "timestamps need a time zone, e.g. 2026-11-23T08:00:00Z"


def epoch_ms(moment: datetime) -> int:
    """`moment` in epoch milliseconds; a timestamp without a time zone is a 422."""
    if moment.tzinfo is None:
        raise HTTPException(422, NAIVE_TIMESTAMP)
    return round(moment.timestamp() * 1000)
