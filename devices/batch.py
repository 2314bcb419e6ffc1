"""The columnar reading batch every stage after decoding works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ReadingBatch:
    """Readings as parallel arrays: series slot, timestamp (epoch ms) and value.

    A slot names one series (device x metric); `devices.series.SeriesTable`
    maps it back to the device and metric.
    """

    slot: Int64Array
    ts_ms: Int64Array
    value: Float64Array

    def __post_init__(self) -> None:
        if not (len(self.slot) == len(self.ts_ms) == len(self.value)):
            raise ValueError("slot, ts_ms and value must have the same length")

    def __len__(self) -> int:
        return len(self.slot)

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(
            np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        )

    @classmethod
    def from_columns(cls, slot: object, ts_ms: object, value: object) -> ReadingBatch:
        return cls(
            np.asarray(slot, dtype=np.int64),
            np.asarray(ts_ms, dtype=np.int64),
            np.asarray(value, dtype=np.float64),
        )

    @classmethod
    def concat(cls, batches: list[ReadingBatch]) -> ReadingBatch:
        if not batches:
            return cls.empty()
        return cls(
            np.concatenate([b.slot for b in batches]),
            np.concatenate([b.ts_ms for b in batches]),
            np.concatenate([b.value for b in batches]),
        )

    def take(self, index: slice | npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> ReadingBatch:
        return ReadingBatch(self.slot[index], self.ts_ms[index], self.value[index])
