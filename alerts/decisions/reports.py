"""Reports from incident timelines: MTTA, MTTR, SLA breaches and escalations per group.

An incident counts when it was opened in ``[start_ms, end_ms)``; only timeline entries before
`end_ms` are read, so a report over a past range does not change as incidents progress.
Time to acknowledge and to resolve are measured from when the incident was opened; the SLA is
the policy's acknowledgement deadline measured from the first dispatch, and an incident still
unacknowledged when its deadline passed before `end_ms` is a breach too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from alerts.model import Incident, TimelineKind
from rules.detection import Severity


class GroupBy(StrEnum):
    TEAM = "team"
    CATEGORY = "category"
    SEVERITY = "severity"


@dataclass(frozen=True)
class ReportRow:
    key: str
    incidents: int
    acknowledged: int
    resolved: int
    mtta_ms: float | None  # None when nothing was acknowledged
    mttr_ms: float | None
    sla_breaches: int
    escalations: int


def report(
    incidents: Iterable[Incident],
    start_ms: int,
    end_ms: int,
    by: GroupBy,
    deadline_ms: Callable[[Severity], int | None],
) -> tuple[ReportRow, ...]:
    """Aggregate the incidents opened in ``[start_ms, end_ms)`` by team, category or severity.

    Args:
        incidents: stored incidents with their timelines (any state).
        start_ms: range start (inclusive).
        end_ms: range end (exclusive).
        by: the grouping key.
        deadline_ms: the acknowledgement deadline for a severity (e.g. `Policy.ack_deadline_ms`).

    Returns:
        One row per key, sorted by key.
    """
    groups: dict[str, list[Incident]] = defaultdict(list)
    for incident in incidents:
        if start_ms <= incident.opened_ms < end_ms:
            groups[_key(incident, by)].append(incident)
    return tuple(_row(key, groups[key], end_ms, deadline_ms) for key in sorted(groups))


def _key(incident: Incident, by: GroupBy) -> str:
    if by is GroupBy.TEAM:
        return incident.team_id or "unassigned"
    if by is GroupBy.CATEGORY:
        return incident.category.value
    return incident.severity.name.lower()


def _row(
    key: str, incidents: list[Incident], end_ms: int, deadline_ms: Callable[[Severity], int | None]
) -> ReportRow:
    tta, ttr, breaches, escalations = [], [], 0, 0
    for incident in incidents:
        first = _firsts(incident, end_ms)
        if TimelineKind.ACKNOWLEDGED in first:
            tta.append(first[TimelineKind.ACKNOWLEDGED] - incident.opened_ms)
        if TimelineKind.RESOLVED in first:
            ttr.append(first[TimelineKind.RESOLVED] - incident.opened_ms)
        breaches += _breached(incident, first, end_ms, deadline_ms)
        escalations += sum(
            1 for e in incident.timeline if e.kind is TimelineKind.ESCALATED and e.ts_ms < end_ms
        )
    return ReportRow(
        key, len(incidents), len(tta), len(ttr), _mean(tta), _mean(ttr), breaches, escalations
    )


def _firsts(incident: Incident, end_ms: int) -> dict[TimelineKind, int]:
    first: dict[TimelineKind, int] = {}
    for entry in incident.timeline:
        if entry.ts_ms < end_ms:
            first.setdefault(entry.kind, entry.ts_ms)
    return first


def _breached(
    incident: Incident,
    first: dict[TimelineKind, int],
    end_ms: int,
    deadline_ms: Callable[[Severity], int | None],
) -> bool:
    deadline = deadline_ms(incident.severity)
    dispatched = first.get(TimelineKind.DISPATCHED)
    if deadline is None or dispatched is None:
        return False
    acked = first.get(TimelineKind.ACKNOWLEDGED)
    if acked is None:
        return dispatched + deadline <= end_ms and TimelineKind.CANCELLED not in first
    return acked - dispatched > deadline


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None
