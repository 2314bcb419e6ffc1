"""Seasonal baseline: what is normal for this hour of the day on a weekday or a weekend day."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import ClassVar
from zoneinfo import ZoneInfo

import numpy as np

from rules.detectors.base import (
    BoolArray,
    Float64Array,
    Int64Array,
    SlotDetector,
    StateSpec,
    check_alpha,
    learn_mask,
    squash,
    standardized,
)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
N_CELLS = 48  # 24 hours x (weekday, weekend)


@lru_cache(maxsize=65_536)
def _offset_ms(timezone: str, minute: int) -> int:
    offset = datetime.fromtimestamp(minute * 60, ZoneInfo(timezone)).utcoffset()
    return 0 if offset is None else round(offset.total_seconds() * 1000)


def utc_offsets_ms(ts_ms: Int64Array, timezone: str) -> Int64Array:
    """Offset of local time in ``timezone`` (an IANA name) from UTC at each of ``ts_ms``.

    A round of the engine spans seconds: when its first and last readings share an offset and
    lie within a day (no zone changes its offset twice a day), that one offset is used.

    Example:
        >>> import numpy as np
        >>> # 2024-01-15 and 2024-07-15 12:00 UTC: Berlin is on CET, then on CEST
        >>> utc_offsets_ms(np.array([1705320000000, 1721044800000]), "Europe/Berlin") // 3_600_000
        array([1, 2])
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = int(ts.min()) // MINUTE_MS, int(ts.max()) // MINUTE_MS
    first_offset = _offset_ms(timezone, first)
    if last - first <= DAY_MS // MINUTE_MS and first_offset == _offset_ms(timezone, last):
        return np.full(len(ts), first_offset, dtype=np.int64)
    minutes, where = np.unique(ts // MINUTE_MS, return_inverse=True)
    return np.array([_offset_ms(timezone, int(m)) for m in minutes], dtype=np.int64)[where]


def season_cell(ts_ms: Int64Array, timezone: str = "UTC") -> Int64Array:
    """Cell index ``24 * is_weekend + hour_of_day`` of ``ts_ms`` in local time of ``timezone``.

    Example:
        >>> import numpy as np
        >>> # 1970-01-03 (a Saturday) 05:00 UTC, and Monday 1970-01-05 23:00 UTC
        >>> season_cell(np.array([2 * 86_400_000 + 5 * 3_600_000, 5 * 86_400_000 - 3_600_000]))
        array([29, 23])
        >>> season_cell(np.array([5 * 86_400_000 - 3_600_000]), "Asia/Shanghai")  # Tue 07:00
        array([7])
    """
    local = ts_ms + utc_offsets_ms(ts_ms, timezone)
    hour = (local // HOUR_MS) % 24
    weekday = (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return np.where(weekday >= 5, 24, 0) + hour


class SeasonalBaseline(SlotDetector):
    """EW mean and variance per series and per (local hour of day x weekday/weekend) cell.

    A cell learns across days, not readings: a reading's weight is ``alpha`` times the share of
    an hour since the series' previous reading (at most an hour), so an hour of readings weighs
    ``alpha`` in its cell whether the series reports every minute or every hour, and yesterday
    weighs ``1 - alpha`` of today. Each cell keeps its accumulated weight ``mass`` (the EW sum
    of weights): the newest reading's share is ``weight / mass``, so early estimates are not
    biased towards zero. A cell speaks once it holds more weight than ``warmup - 1/2`` days of
    learning give it (so after ``warmup`` days, however often the series reports: an hour of
    readings every minute weighs ``1 - exp(-alpha)``, a bit less than one an hour); until then
    it scores 0.

    State is float32 (48 cells x mean, variance and mass = 576 bytes per series) and the time
    of the series' previous reading (8 bytes); arithmetic is float64, rounded to float32 when
    stored. A cell's mean and variance sit side by side (``moments[slot, cell] = (mean, var)``)
    and are read and written as one 8-byte word: the arrays are far larger than the CPU caches
    and a round reads cells at random.

    Args:
        alpha: Weight of one day's hour of readings in its cell.
        warmup: Days of learning a cell needs before it scores.
        z_scale: Deviation (in the cell's std units) that scores 0.5.
        min_std: Floor added to the cell's std.
        timezone: The city's IANA time zone: cells are local hours and local weekends.

    Example:
        >>> import numpy as np
        >>> d = SeasonalBaseline(warmup=2)
        >>> d.grow(1)
        >>> s = np.zeros(1, dtype=np.int64)
        >>> for day in range(3):  # Thursday to Saturday 1970-01-01.., 08:00: weekday cell only
        ...     for minute in range(0, 60, 10):
        ...         t = np.array([day * 86_400_000 + 8 * 3_600_000 + minute * 60_000])
        ...         d.update(s, t, np.array([20.0 + day + minute / 60]))
        >>> t = np.array([7 * 86_400_000 + 8 * 3_600_000])  # next Thursday 08:00
        >>> near, far = d.score(s, t, np.array([21.0])), d.score(s, t, np.array([40.0]))
        >>> bool(near[0] < 0.5 < far[0])
        True
    """

    _state: ClassVar[StateSpec] = {
        "moments": (np.float32, 0.0, (N_CELLS, 2)),
        "mass": (np.float32, 0.0, (N_CELLS,)),
        "last_ts": (np.int64, 0, ()),
    }

    def __init__(
        self,
        alpha: float = 0.1,
        warmup: int = 3,
        z_scale: float = 3.0,
        min_std: float = 1e-3,
        timezone: str = "UTC",
    ) -> None:
        self.alpha, self.warmup, self.z_scale = check_alpha(alpha), warmup, z_scale
        self.min_std, self.timezone = min_std, timezone
        ZoneInfo(timezone)  # an unknown zone fails here, not at the first reading
        self._ready_mass = 1.0 - (1.0 - alpha) ** (warmup - 0.5)
        super().__init__()

    def _cells(self, slots: Int64Array, ts_ms: Int64Array) -> Int64Array:
        """Flat index ``slot * N_CELLS + cell`` of each reading into the raveled state arrays."""
        return slots * N_CELLS + season_cell(ts_ms, self.timezone)

    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat views (never copies) for 1-d indexing: (mean, var) pairs as words, and masses."""
        return (np.reshape(self.moments, -1, copy=False).view(np.int64),
                np.reshape(self.mass, -1, copy=False))

    def score(self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array) -> Float64Array:
        """Score readings in [0, 1] against their cell; 0 while the cell is warming up."""
        self._check(slots, ts_ms, values)
        _, mean, var, mass = self._gather_and_remember(slots, ts_ms, values)
        z = np.abs(standardized(values, mean, var, self.min_std))
        return np.where(mass >= self._ready_mass, squash(z, self.z_scale), 0.0)

    def update(
        self,
        slots: Int64Array,
        ts_ms: Int64Array,
        values: Float64Array,
        skip: BoolArray | None = None,
    ) -> None:
        """Learn readings (all but ``skip``) into their cells."""
        self._check(slots, ts_ms, values)
        learn = learn_mask(len(slots), skip)
        i, mean, var, mass = self._recall_or_gather(slots, ts_ms, values)
        dt = np.clip(ts_ms - self.last_ts[slots], 0, HOUR_MS).astype(np.float64)
        self.last_ts[slots] = ts_ms
        if not learn.all():
            i, mean, var, mass, dt, values = (
                a[learn] for a in (i, mean, var, mass, dt, values))
        weight = self.alpha * dt / HOUR_MS
        new_mass = mass + weight * (1.0 - mass)
        a = np.where(new_mass > 0.0, weight / np.where(new_mass > 0.0, new_mass, 1.0), 1.0)
        d = values - mean
        moments, masses = self._flat()
        pairs = np.empty((len(i), 2), dtype=np.float32)  # rounded to float32 when stored
        pairs[:, 0], pairs[:, 1] = mean + a * d, (1.0 - a) * (var + a * d * d)
        moments[i] = pairs.view(np.int64)[:, 0]
        masses[i] = new_mass

    def _gather_state(
        self, slots: Int64Array, ts_ms: Int64Array, values: Float64Array
    ) -> tuple[Int64Array, Float64Array, Float64Array, Float64Array]:
        """(flat index, mean, var, mass) of the readings' cells, in float64."""
        i = self._cells(slots, ts_ms)
        moments, masses = self._flat()
        pairs = moments[i].view(np.float32).reshape(-1, 2)
        return (i, pairs[:, 0].astype(np.float64), pairs[:, 1].astype(np.float64),
                masses[i].astype(np.float64))
