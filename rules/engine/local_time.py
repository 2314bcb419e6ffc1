"""The city's local time of epoch-millisecond instants, for `hour()`.

An IANA zone's offset changes only at its transitions, and every zone in use moves on
quarter hours, so one offset per distinct quarter hour of a batch is exact and cheap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

HOUR_MS = 3_600_000
_QUARTER_MS = HOUR_MS // 4


def local_hour(t_ms: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Hour of day (0-23, float64) in `zone` of each instant in `t_ms`.

    >>> local_hour(np.array([0, 1_720_000_000_000]), ZoneInfo("Asia/Shanghai")).tolist()
    [8.0, 17.0]
    """
    t = np.asarray(t_ms, dtype=np.int64)
    quarters, where = np.unique(t // _QUARTER_MS, return_inverse=True)
    offsets = np.array([_offset_ms(int(q) * _QUARTER_MS, zone) for q in quarters], np.int64)
    return (((t + offsets[where.reshape(t.shape)]) // HOUR_MS) % 24).astype(np.float64)


def local_hour_of(t_ms: int, zone: ZoneInfo) -> float:
    """`local_hour` of one instant, the plain way (the reference implementation's)."""
    return float(datetime.fromtimestamp(t_ms / 1000, zone).hour)


def _offset_ms(t_ms: int, zone: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return int(offset.total_seconds() * 1000)
