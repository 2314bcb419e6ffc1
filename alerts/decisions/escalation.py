"""Escalation timing, computed only from an incident's stored times, so it survives restarts.

While an incident waits for acknowledgement (state `dispatched`), its level's deadline runs from
`dispatched_ms` (level 0) or `escalated_ms` (later levels). A missed deadline escalates one level
to `policy.levels[level]`; past the last level the incident is only re-notified. Between
deadlines, the team is re-notified every `repeat` interval after `last_notified_ms`.
Acknowledgement (any state other than `dispatched`) stops both. After a long outage `due`
returns one escalation per call; the shell applies it (`incidents.escalate`) and asks again.
A policy's `steps` (paging the people on duty) count from `dispatched_ms`: `steps_due`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alerts.model import Incident, IncidentState, TimelineKind
from alerts.routing import Policy


class Action(StrEnum):
    NONE = "none"
    ESCALATE = "escalate"
    REPEAT = "repeat"


@dataclass(frozen=True)
class Due:
    """What to do now; `level`/`team_id` are the target of an escalation (else the current
    level and None); `next_check_ms` is when `due` may next say something (None: never)."""

    action: Action
    level: int
    team_id: str | None = None
    next_check_ms: int | None = None


def due(incident: Incident, policy: Policy, now_ms: int) -> Due:
    """Decide whether the incident must escalate or be re-notified at `now_ms`.

    Args:
        incident: as stored; only its state, severity and times are read.
        policy: the escalation policy of the route that dispatched it.
        now_ms: the current time.

    Returns:
        The action, with the escalation target and the next time worth checking.
    """
    level = incident.escalation_level
    if incident.state is not IncidentState.DISPATCHED or incident.dispatched_ms is None:
        return Due(Action.NONE, level)
    started_ms = incident.dispatched_ms
    if level > 0 and incident.escalated_ms is not None:
        started_ms = incident.escalated_ms
    deadline_ms = policy.ack_deadline_ms(incident.severity)
    escalate_at = None
    if deadline_ms is not None and level < len(policy.levels):
        escalate_at = started_ms + deadline_ms
        if now_ms >= escalate_at:
            return Due(Action.ESCALATE, level + 1, policy.levels[level])
    repeat_ms = policy.repeat_ms(incident.severity)
    repeat_at = None
    if repeat_ms is not None:
        repeat_at = (incident.last_notified_ms or started_ms) + repeat_ms
        if now_ms >= repeat_at:
            return Due(Action.REPEAT, level, None, _earliest(escalate_at, now_ms + repeat_ms))
    return Due(Action.NONE, level, None, _earliest(escalate_at, repeat_at))


def _earliest(*times_ms: int | None) -> int | None:
    known = [t for t in times_ms if t is not None]
    return min(known) if known else None


def steps_done(incident: Incident) -> int:
    """How many policy steps have run since the incident was (last) dispatched: one ``paged``
    entry on the timeline each."""
    done = 0
    for entry in incident.timeline:
        if entry.kind is TimelineKind.DISPATCHED:
            done = 0
        elif entry.kind is TimelineKind.PAGED:
            done += 1
    return done


def steps_due(incident: Incident, policy: Policy, now_ms: int) -> tuple[int, ...]:
    """The indices of `policy.steps` due at `now_ms` that have not run yet.

    A step is due `after_s` after the dispatch while the incident is still unacknowledged
    (state `dispatched`); acknowledging it stops every later step. After an outage every step
    whose time has passed is due at once, in order.
    """
    if (not policy.steps or incident.state is not IncidentState.DISPATCHED
            or incident.dispatched_ms is None):
        return ()
    since, done = incident.dispatched_ms, steps_done(incident)
    return tuple(
        n for n, step in enumerate(policy.steps)
        if n >= done and now_ms >= since + step.after_s * 1000
    )
