"""The API's one timestamp convention, in and out.

Out: RFC 3339 (ISO 8601 with an offset) in UTC with a ``Z`` and milliseconds,
``2026-11-23T08:00:00.000Z`` (`iso_time`); the city's zone is the pages' business, not the
wire's. In: RFC 3339 with an offset (``Z`` or ``+08:00``) or epoch milliseconds as digits
(`Instant`, `parse_instant`); a timestamp without an offset is refused (a 422 with the reason),
since it would mean a different instant in every time zone.

The time now comes from `devices.clock.now_ms`, the platform's one wall clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BeforeValidator, WithJsonSchema

NAIVE_TIMESTAMP = "timestamps need a time zone, e.g. 2026-11-23T08:00:00Z"
NOT_A_TIMESTAMP = "a timestamp is ISO 8601 with a time zone (2026-11-23T08:00:00Z) or epoch ms"
EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last instant `iso_time` shows
EXAMPLE = "2026-11-23T08:00:00.000Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_MS_MIN = -62_135_596_800_000  # 0001-01-01T00:00:00Z, the first instant datetime holds
_DIGITS = re.compile(r"[0-9]{1,30}")


def iso_time(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC: ``2026-11-23T08:00:00.000Z``."""
    moment = _EPOCH + timedelta(milliseconds=min(max(ms, _EPOCH_MS_MIN), EPOCH_MS_MAX))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_times(ms: npt.NDArray[np.int64]) -> list[str]:
    """`iso_time` of a whole series at once (for readings: one Python call per point would
    cost a readings page several times its plain serialization)."""
    moments = np.clip(ms, _EPOCH_MS_MIN, EPOCH_MS_MAX).astype("datetime64[ms]")
    texts: list[str] = np.datetime_as_string(moments, unit="ms", timezone="UTC").tolist()
    return texts


def parse_instant(value: object) -> int:
    """An input timestamp in epoch milliseconds: RFC 3339 text with an offset, or epoch
    milliseconds (an integer, or its digits); ValueError with the reason otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= EPOCH_MS_MAX:
            raise ValueError(f"epoch ms must lie between 0 and {EPOCH_MS_MAX}")
        return value
    if not isinstance(value, str):
        raise ValueError(NOT_A_TIMESTAMP)
    if _DIGITS.fullmatch(value):
        return parse_instant(int(value))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r}: {NOT_A_TIMESTAMP}") from None
    if moment.tzinfo is None:
        raise ValueError(NAIVE_TIMESTAMP)
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if not _EPOCH_MS_MIN <= ms <= EPOCH_MS_MAX:  # 0001-01-01 with +14:00, 9999-12-31 with -12:00
        raise ValueError("a timestamp must lie between 0001-01-01 and 9999-12-31 in UTC")
    return ms


Instant = Annotated[
    int,
    BeforeValidator(parse_instant),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "integer", "minimum": 0, "maximum": EPOCH_MS_MAX},
        ],
        "description": "RFC 3339 with a time zone, or epoch milliseconds",
        "examples": [EXAMPLE, 1795420800000],
    }),
]
"""A timestamp parameter or body field as the API accepts it, held as epoch milliseconds."""
