"""Errors raised by `alerts`.

AlertError
 ├── TransitionError(entity, entity_id, from_state, to_state)  a change the machine forbids
 │    └── NotClosableError(incident_id, open_alert_ids)          closing with live alerts
 ├── NoteLimitError(incident_id, limit)                        the incident has its most notes
 ├── UnknownAlertError(alert_id)                               no open alert with that id
 ├── UnknownIncidentError(incident_id)                         no incident with that id
 ├── UnknownTeamError(team_id)                                 no such team in the routing file
 ├── SilenceError                                              a silence is invalid
 │    └── UnknownSilenceError(silence_id)                        no unexpired silence with that id
 ├── ChannelError(channel, reason, retryable)  (alerts.channels.base)  a send failed
 ├── RoutingError(source, problems)                            the routing file is invalid
 ├── RoutingEditRefused(reason)                                a routing edit cannot be made
 │    ├── ReadOnlyRoutingError                                   no routing file is configured
 │    └── TeamInUseError(team_id, references)                    a removed team is still named
 └── UnknownRoutingPartError(kind, part_id)                    no such handler, schedule, override
"""

from __future__ import annotations


class AlertError(Exception):
    """Root of the errors raised by `alerts`."""


class TransitionError(AlertError):
    """`entity` (``alert`` or ``incident``) cannot go from `from_state` to `to_state`."""

    def __init__(self, entity: str, entity_id: str, from_state: str, to_state: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"{entity} {entity_id}: cannot go from {from_state} to {to_state}")


class NotClosableError(TransitionError):
    """An incident is closed only once it is resolved and all its alerts have cleared."""

    def __init__(self, incident_id: str, from_state: str, open_alert_ids: tuple[str, ...]) -> None:
        super().__init__("incident", incident_id, from_state, "closed")
        self.open_alert_ids = open_alert_ids
        if open_alert_ids:
            self.args = (f"{self.args[0]}: alerts still active: {', '.join(open_alert_ids)}",)


class NoteLimitError(AlertError):
    """The incident's timeline holds `limit` notes already: one more is refused."""

    def __init__(self, incident_id: str, limit: int) -> None:
        self.incident_id = incident_id
        self.limit = limit
        super().__init__(f"incident {incident_id} has {limit} notes, the most it may hold")


class UnknownAlertError(AlertError):
    def __init__(self, alert_id: str) -> None:
        self.alert_id = alert_id
        super().__init__(f"no open alert {alert_id!r}")


class SilenceError(AlertError):
    pass


class UnknownSilenceError(SilenceError):
    def __init__(self, silence_id: str) -> None:
        self.silence_id = silence_id
        super().__init__(f"no unexpired silence {silence_id!r}")


class RoutingError(AlertError):
    """The routing file `source` is invalid; `problems` lists each one as ``location: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid routing file {source}:\n  " + "\n  ".join(problems))


class UnknownIncidentError(AlertError):
    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(f"no incident {incident_id!r}")


class UnknownTeamError(AlertError):
    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        super().__init__(f"no team {team_id!r} in the routing file")


class RoutingEditRefused(AlertError):
    """A change of the routing file that cannot be made as asked (`reason` says why)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ReadOnlyRoutingError(RoutingEditRefused):
    """The platform runs the routing shipped with urbanwatch, which is not edited in place."""


class TeamInUseError(RoutingEditRefused):
    """Team `team_id` cannot go: `references` (routes, policy levels or steps) still name it."""

    def __init__(self, team_id: str, references: list[str]) -> None:
        self.team_id = team_id
        self.references = references
        super().__init__(f"team {team_id!r} is still named by {'; '.join(references)}: "
                         "change those first")


class UnknownRoutingPartError(AlertError):
    """No `kind` (handler, schedule, override) `part_id` in the routing file."""

    def __init__(self, kind: str, part_id: str) -> None:
        self.kind = kind
        self.part_id = part_id
        super().__init__(f"no {kind} {part_id!r} in the routing file")
