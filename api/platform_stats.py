"""What the API reads from the running platform's own counters (on `/metrics` and `/readyz`).

Protocols only: the composition root hands in its objects (`IngestCounters`, the rule runner,
the alert store's backlog, the task supervisor's health) and the API never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class IngestStats(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


class EngineStats(Protocol):
    """The rule engine's running totals (the composition root's `Judge`)."""

    evaluations: int
    evaluate_s_total: float
    ticks: int
    tick_s_total: float


class HeldDetectionStats(Protocol):
    """Detections the alert store refused, held until it takes them (`DetectionBacklog`)."""

    size: int  # held now
    dropped: int  # given up when the backlog was full
    failures: int  # store attempts that failed
    rejected: int  # detections the store refused as data, set aside


class TaskStats(Protocol):
    """The supervised tasks of the platform: which run, how often each was restarted."""

    @property
    def up(self) -> Mapping[str, bool]: ...

    @property
    def restarts(self) -> Mapping[str, int]: ...
