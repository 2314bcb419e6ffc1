"""The batch being gathered: decoded readings plus every message they came from.

Each message stays here until the batch is flushed, so it is acknowledged only
after what it carried is stored (readings) and taken by the broker (its dead letters:
the whole message's, or one per refused reading). Out-of-range readings ride along as
faults: never stored, handed to the rule engine with the stored batch.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from devices.batch import Int64Array, ReadingBatch
from devices.decode import Fault, Rows
from ingest.subscriber import Message

Confirmation = concurrent.futures.Future[None]


@dataclass
class PendingBatch:
    opened_s: float  # monotonic time the first message arrived
    messages: list[Message] = field(default_factory=list)
    letters: list[tuple[int, Confirmation]] = field(default_factory=list)  # (message, its DL)
    # Readings as plain lists until the flush: one set of arrays per batch, not per message.
    _keys: list[tuple[int, int]] = field(default_factory=list)  # (slot, ts_ms)
    _values: list[float] = field(default_factory=list)
    _part_message: list[int] = field(default_factory=list)
    _part_length: list[int] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    good_bytes: int = 0  # payload bytes of the messages whose readings wait for the write

    def __len__(self) -> int:
        return len(self.messages)

    def add_readings(
        self, message: Message, rows: Rows, dead_letters: Iterable[Confirmation] = ()
    ) -> None:
        """A message with readings to store (and, if part of it was refused, its letters)."""
        self.letters.extend((len(self.messages), letter) for letter in dead_letters)
        self._part_message.append(len(self.messages))
        self._part_length.append(len(rows))
        self._keys.extend(rows)
        self._values.extend(rows.values())
        self.messages.append(message)
        self.good_bytes += len(message.payload)

    @property
    def n_readings(self) -> int:
        return len(self._values)

    @property
    def n_good(self) -> int:
        """Messages whose readings wait for the write (they hold memory)."""
        return len(self._part_message)

    def add_rejected(self, message: Message, dead_letters: Iterable[Confirmation]) -> None:
        """A message with nothing to store: it waits for its dead letters only."""
        self.letters.extend((len(self.messages), letter) for letter in dead_letters)
        self.messages.append(message)

    def add_faults(self, faults: Iterable[Fault]) -> None:
        self._faults.extend(faults)

    def is_full(self, batch_size: int) -> bool:
        return self.n_readings >= batch_size or len(self.messages) >= batch_size

    def time_left_s(self, now_s: float, flush_interval_s: float) -> float:
        return self.opened_s + flush_interval_s - now_s

    def readings(self) -> tuple[ReadingBatch, Int64Array]:
        """All readings as one batch, and for each the index of its message."""
        message_of = np.repeat(np.asarray(self._part_message, dtype=np.int64), self._part_length)
        keys = np.array(self._keys, dtype=np.int64).reshape(-1, 2)
        batch = ReadingBatch(np.ascontiguousarray(keys[:, 0]), np.ascontiguousarray(keys[:, 1]),
                             np.array(self._values, dtype=np.float64))
        return batch, message_of

    def faults(self) -> ReadingBatch:
        """The out-of-range readings of known series, for the engine (never stored)."""
        if not self._faults:
            return ReadingBatch.empty()
        slot, ts_ms, value = zip(*self._faults, strict=True)
        return ReadingBatch.from_columns(slot, ts_ms, value)

    def oldest_received_ms(self) -> int:
        return min(m.received_ms for m in self.messages)
