"""What one publishing step carries, and the profile every scenario's strength follows.

A `Frame` is the readings of some devices at some instants, as the signal models give them
(`simulators.signals.values`), with what the wire will carry: the timestamp sent (a skewed
clock sends another) and how many copies of each message (0 dropped, 2 duplicated). Scenarios
change a frame in place; they are pure functions of (city, frame), so the same run gives
the same messages however it is chunked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    dev: np.ndarray  # int64 device indices into city.devices
    ts_ms: np.ndarray  # int64 true reading times
    values: dict[str, np.ndarray]  # metric -> float64, parallel to dev (NaN: not its metric)
    sent_ts_ms: np.ndarray  # int64 the timestamp on the wire
    copies: np.ndarray  # int64 messages published for the row: 0 dropped, 1, 2 duplicated

    @classmethod
    def of(cls, dev: np.ndarray, ts_ms: np.ndarray, values: dict[str, np.ndarray]) -> Frame:
        return cls(dev, ts_ms, values, ts_ms.copy(), np.ones(len(dev), dtype=np.int64))

    def rows(self, devices: np.ndarray, start_ms: int, end_ms: int) -> np.ndarray:
        """Row positions of `devices` with start_ms <= ts < end_ms."""
        return np.flatnonzero(np.isin(self.dev, devices) & (self.ts_ms >= start_ms)
                              & (self.ts_ms < end_ms))


@dataclass(frozen=True)
class Window:
    """When a scenario acts: ramp up over `rise_ms`, hold, ramp down over `fall_ms`."""

    start_ms: int
    end_ms: int
    rise_ms: int
    fall_ms: int

    @classmethod
    def of(cls, start_ms: int, duration_ms: int, rise_share: float = 0.3,
           fall_share: float = 0.3) -> Window:
        return cls(start_ms, start_ms + duration_ms, round(duration_ms * rise_share),
                   round(duration_ms * fall_share))

    def profile(self, ts_ms: np.ndarray) -> np.ndarray:
        """Strength in [0, 1]: 0 outside, a linear rise, 1 while held, a linear fall."""
        t = np.asarray(ts_ms, dtype=np.float64)
        up = (t - self.start_ms) / max(self.rise_ms, 1)
        down = (self.end_ms - t) / max(self.fall_ms, 1)
        return np.clip(np.minimum(up, down), 0.0, 1.0)

    def reaches_ms(self, share: float) -> int:
        """When the rise reaches `share` of full strength (0 < share <= 1)."""
        return self.start_ms + int(np.ceil(share * self.rise_ms))
