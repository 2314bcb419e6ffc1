"""The stored shapes of alerts and incidents: plain frozen values with millisecond timestamps.

Everything here can be written to SQL and read back unchanged, so the pure decision modules
(`lifecycle`, `grouping`, `incidents`, `escalation`) can be replayed after a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from rules.detection import Category, Severity

CAP_SEVERITY: dict[Severity, str] = {
    Severity.INFO: "Minor",
    Severity.BLUE: "Minor",
    Severity.YELLOW: "Moderate",
    Severity.ORANGE: "Severe",
    Severity.RED: "Extreme",
}
"""Four-colour level → CAP ``severity`` (domain.md §1c)."""

LEVEL: dict[Severity, str | None] = {
    Severity.INFO: None,
    Severity.BLUE: "IV",
    Severity.YELLOW: "III",
    Severity.ORANGE: "II",
    Severity.RED: "I",
}
"""Four-colour level → the Roman warning level (I is the highest); info has none."""


def stable_id(prefix: str, *parts: object) -> str:
    """A short id derived from `parts`, so replaying the same input yields the same ids."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    CLOSED = "closed"


OPEN_ALERT_STATES = frozenset({AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED})
ACTIVE_ALERT_STATES = frozenset({AlertState.FIRING, AlertState.ACKNOWLEDGED})


@dataclass(frozen=True)
class AlertChange:
    """One entry of an alert's history; `from_state == to_state` for a severity-only change."""

    ts_ms: int
    from_state: AlertState | None
    to_state: AlertState
    severity: Severity
    actor: str = "engine"


@dataclass(frozen=True)
class Alert:
    """The one alert of a (rule, subject) while it is not closed."""

    id: str
    rule_id: str
    subject: str
    category: Category
    severity: Severity
    state: AlertState
    started_ms: int
    updated_ms: int
    value: float
    cleared_ms: int | None = None
    device_id: str | None = None
    metric: str | None = None
    district: str | None = None
    grid: str | None = None
    flapping: bool = False
    history: tuple[AlertChange, ...] = ()
    notified: bool = False  # this firing spell got through the mute stage (see `announce`)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule_id, self.subject)

    @property
    def is_active(self) -> bool:
        """Firing or acknowledged: the condition holds and has been announced."""
        return self.state in ACTIVE_ALERT_STATES


class TransitionKind(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    SEVERITY = "severity"  # severity changed while firing/acknowledged
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    CLOSED = "closed"
    FLAPPING = "flapping"  # started flapping: notifications held back from now on
    SETTLED = "settled"  # stopped flapping: the current state is announced once
    UNMUTED = "unmuted"  # still firing when its silence ended or inhibition lifted: announced now


@dataclass(frozen=True)
class Transition:
    """What happened to an alert at `ts_ms`, and whether it should reach anyone.

    `notify` says whether this kind of change is worth a notification at all; `suppressed_by`
    says why it is held back anyway (``flapping``, ``silence:<id>``, ``inhibit:<alert id>``).
    """

    alert: Alert  # the alert after the change
    kind: TransitionKind
    ts_ms: int
    from_state: AlertState | None
    from_severity: Severity | None
    notify: bool
    suppressed_by: str | None = None
    reason: str = ""  # why, when not the engine's condition (e.g. "rule changed/removed")

    @property
    def dispatchable(self) -> bool:
        return self.notify and self.suppressed_by is None

    @property
    def raises(self) -> bool:
        """A change that opens or grows an incident when it is dispatchable."""
        return self.kind in RAISING_KINDS


RAISING_KINDS = frozenset(
    {TransitionKind.FIRING, TransitionKind.SEVERITY, TransitionKind.SETTLED, TransitionKind.UNMUTED}
)


class IncidentState(StrEnum):
    NEW = "new"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REASSIGNED = "reassigned"
    CANCELLED = "cancelled"


FINAL_INCIDENT_STATES = frozenset({IncidentState.CLOSED, IncidentState.CANCELLED})


class TimelineKind(StrEnum):
    """Timeline entry kinds: every incident state, plus what happens between state changes."""

    OPENED = "opened"
    ALERT_ADDED = "alert_added"
    ALERT_CLEARED = "alert_cleared"
    SEVERITY = "severity"
    NOTE = "note"
    PHOTO = "photo"  # a photo from the scene; detail is its name (the API serves it)
    NOTIFIED = "notified"  # a dispatch attempt or repeat notification, detail says which channel
    ESCALATED = "escalated"
    PAGED = "paged"  # a policy step paged the people on duty; detail says who and how
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REASSIGNED = "reassigned"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TimelineEntry:
    ts_ms: int
    actor: str
    kind: TimelineKind
    detail: str = ""


@dataclass(frozen=True)
class Member:
    """An alert as its incident sees it."""

    alert_id: str
    rule_id: str
    severity: Severity
    device_id: str | None
    district: str | None
    grid: str | None
    cleared: bool = False


@dataclass(frozen=True)
class Incident:
    """What is dispatched: related alerts grouped, followed from `new` to `closed`.

    The stored times (`dispatched_ms`, `acknowledged_ms`, `escalated_ms`, `last_notified_ms`) are
    what `escalation.due` computes its timers from, so timers survive a restart.
    """

    id: str
    title: str
    category: Category
    state: IncidentState
    members: tuple[Member, ...]
    opened_ms: int
    updated_ms: int
    last_alert_ms: int
    handler_id: str | None = None
    team_id: str | None = None
    escalation_level: int = 0
    dispatched_ms: int | None = None
    acknowledged_ms: int | None = None
    resolved_ms: int | None = None
    closed_ms: int | None = None
    escalated_ms: int | None = None
    last_notified_ms: int | None = None
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def severity(self) -> Severity:
        """The highest severity of its alerts."""
        return max(m.severity for m in self.members)

    @property
    def alert_ids(self) -> tuple[str, ...]:
        return tuple(m.alert_id for m in self.members)

    @property
    def open_alert_ids(self) -> tuple[str, ...]:
        return tuple(m.alert_id for m in self.members if not m.cleared)

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({m.device_id for m in self.members if m.device_id}))

    @property
    def districts(self) -> tuple[str, ...]:
        return tuple(sorted({m.district for m in self.members if m.district}))

    @property
    def grids(self) -> tuple[str, ...]:
        return tuple(sorted({m.grid for m in self.members if m.grid}))

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_INCIDENT_STATES
