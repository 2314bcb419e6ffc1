"""Running totals of what the live stream carries, for `/metrics`: alerts raised and cleared
(by severity and category), escalations (by team) and delivery outcomes (by channel).

Every alert transition, incident timeline entry and delivery attempt is published on the
`LiveHub` as it is committed, so counting there counts each exactly once, in every process that
runs the pipeline; `LiveHub(tally=...)` calls `count` before it hands an event to subscribers.
"""

from __future__ import annotations

from collections import Counter

from alerts.channels.live import Event

RAISED, CLEARED = "firing", "cleared"


class EventTally:
    def __init__(self) -> None:
        self.alerts_raised: Counter[tuple[str, str]] = Counter()  # (severity, category)
        self.alerts_cleared: Counter[tuple[str, str]] = Counter()
        self.escalations: Counter[str] = Counter()  # team
        self.deliveries: Counter[tuple[str, str]] = Counter()  # (channel type, outcome)

    def count(self, event: Event) -> None:
        kind = event.get("kind")
        match event.get("type"):
            case "alert" if kind in (RAISED, CLEARED):
                key = (str(event.get("severity")), str(event.get("category")))
                (self.alerts_raised if kind == RAISED else self.alerts_cleared)[key] += 1
            case "incident" if kind == "escalated":
                self.escalations[str(event.get("team_id"))] += 1
            case "dispatch":
                channel = str(event.get("channel")).partition(".")[0]  # webhook.1 -> webhook
                self.deliveries[(channel, str(event.get("outcome")))] += 1
