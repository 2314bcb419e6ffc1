"""The city's local time of epoch-millisecond instants, for `hour()`.

Offsets come from the seasonal baseline's `utc_offsets_ms` (one per distinct minute of a
round, or one for a round that no transition crosses).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from rules.detectors.seasonal import HOUR_MS, utc_offsets_ms

_QUARTER_MS = HOUR_MS // 4


def local_hour(t_ms: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Hour of day (0-23, float64) in `zone` of each instant in `t_ms`.

    >>> local_hour(np.array([0, 1_720_000_000_000]), ZoneInfo("Asia/Shanghai")).tolist()
    [8.0, 17.0]
    """
    t = np.asarray(t_ms, dtype=np.int64)
    offsets = utc_offsets_ms(t.ravel(), zone.key).reshape(t.shape)
    return (((t + offsets) // HOUR_MS) % 24).astype(np.float64)


def next_hour_change(t_ms: np.ndarray) -> np.ndarray:
    """The first instant after each of `t_ms` at which a local hour may change, in any zone:
    offsets are whole quarter hours, so local hours turn only on UTC quarter hours."""
    return (np.asarray(t_ms, dtype=np.int64) // _QUARTER_MS + 1) * _QUARTER_MS


def local_hour_of(t_ms: int, zone: ZoneInfo) -> float:
    """`local_hour` of one instant, the plain way (the reference implementation's)."""
    return float(datetime.fromtimestamp(t_ms / 1000, zone).hour)

