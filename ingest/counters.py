"""What the ingestor has done so far, as plain numbers (Prometheus exposure reads these)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestCounters:
    """Monotonic counters, plus the lag of the last stored batch.

    Only the asyncio thread updates them, so no locking is needed.
    """

    received: int = 0  # MQTT messages taken from the subscriber
    redelivered: int = 0  # of which carried the DUP flag
    stored_readings: int = 0  # readings made durable: accepted by InfluxDB, or spooled
    stored_messages: int = 0  # messages whose readings were stored
    rejected: Counter[str] = field(default_factory=Counter)  # whole messages, by reject reason
    # single readings refused (the rest of their message kept), by reject reason
    readings_rejected: Counter[str] = field(default_factory=Counter)
    points_rejected: int = 0  # readings InfluxDB refused for good (dead-lettered)
    dead_lettered: int = 0  # dead letters published
    write_errors: int = 0  # failed write attempts (each retry counts)
    batches: int = 0  # batches stored
    last_batch_lag_ms: int = 0  # stored-at minus the receive time of its oldest message
    on_batch_errors: int = 0  # on_batch callbacks that raised
    spooled: int = 0  # readings written to the local spool (InfluxDB was unavailable)
    replayed: int = 0  # spooled readings InfluxDB has since accepted
    replay_refused: int = 0  # spooled readings InfluxDB refused for good on replay
    spool_full: int = 0  # batches held because the spool was full (or the disk failed)
    spool_bytes: int = 0  # current size of the spool's segment files
    corrupt_records_skipped: int = 0  # spool records found torn or corrupt at open
    unplaceable_records: int = 0  # spool records dead-lettered, not replayed (e.g. version 1)

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def snapshot(self) -> dict[str, Any]:
        """A copy safe to hand out (the reason counter is copied into a plain dict)."""
        return {
            "received": self.received,
            "redelivered": self.redelivered,
            "stored_readings": self.stored_readings,
            "stored_messages": self.stored_messages,
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
            "readings_rejected": dict(self.readings_rejected),
            "readings_rejected_total": sum(self.readings_rejected.values()),
            "points_rejected": self.points_rejected,
            "dead_lettered": self.dead_lettered,
            "write_errors": self.write_errors,
            "batches": self.batches,
            "last_batch_lag_ms": self.last_batch_lag_ms,
            "on_batch_errors": self.on_batch_errors,
            "spooled": self.spooled,
            "replayed": self.replayed,
            "replay_refused": self.replay_refused,
            "spool_full": self.spool_full,
            "spool_bytes": self.spool_bytes,
            "corrupt_records_skipped": self.corrupt_records_skipped,
            "unplaceable_records": self.unplaceable_records,
        }
