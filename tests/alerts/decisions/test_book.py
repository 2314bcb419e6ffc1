"""`Book.apply` and `Book.tick` without a database: detections and `now` in, a `Decision` out."""

from __future__ import annotations

import json

from alerts.decisions.book import Book
from alerts.decisions.lifecycle import AlertBook
from alerts.decisions.planning import Folded, OutboxView
from alerts.decisions.silences import Field, Matcher, Silence
from alerts.decisions.storm import StormControl, Verdict
from alerts.model import AlertState, IncidentState
from alerts.routing import load_routing
from rules.detection import Category, Detection, DetectionState, Severity

T0 = 1_717_200_000_000
MIN = 60_000
NOTHING_SENT = OutboxView()


def gas(n: int = 1, district: str = "dongcheng") -> Detection:
    return Detection(
        "gas-high",
        Category.SAFETY,
        f"gas-{n}",
        DetectionState.FIRING,
        Severity.RED,
        T0,
        80.0,
        f"gas-{n}",
        "ch4",
        district,
        f"{district}-g{n}",
    )


def book(**kwargs) -> Book:
    types = {f"gas-{n}": "gas" for n in range(10)}
    return Book(load_routing(), device_types=types, **kwargs)


def test_a_raise_opens_a_dispatched_incident_and_one_notice():
    decision = book().apply([gas(1)], T0 + 10, NOTHING_SENT)
    [(before, alert)] = decision.alerts
    assert before is None and alert.state is AlertState.FIRING
    [(opened_from, incident)] = decision.incidents
    assert opened_from is None
    assert (incident.state, incident.team_id) == (IncidentState.DISPATCHED, "gas-emergency")
    assert decision.policies[incident.id] is not None
    [mail] = decision.mail
    assert mail.key == f"{incident.id}:dispatched:1:gas-emergency"
    assert mail.verdict is Verdict.SEND
    [message] = mail.messages
    assert (message.channel, message.target) == ("mqtt", "dispatch/gas-emergency")
    assert json.loads(message.body)["incident"]["devices"] == ["gas-1"]
    assert [e["type"] for e in decision.live] == ["alert", "incident", "incident"]
    assert decision.book.incidents.incidents == {incident.id: incident}
    assert decision.book.open_alerts() == [alert]


def test_a_silenced_alert_is_recorded_but_opens_nothing_and_tells_no_one():
    silence = Silence("s-1", (Matcher(Field.DEVICE, "gas-1"),), T0 - MIN, T0 + MIN, "op", "works")
    decision = book(silences=(silence,)).apply([gas(1)], T0, NOTHING_SENT)
    [t] = decision.transitions
    assert t.suppressed_by == "silence:s-1"
    assert [after.state for _, after in decision.alerts] == [AlertState.FIRING]
    assert decision.incidents == () and decision.mail == ()
    assert [e["suppressed_by"] for e in decision.live] == ["silence:s-1"]


def test_a_storm_folds_the_excess_and_a_later_tick_sends_one_digest():
    storm = StormControl(max_per_window=2, window_ms=MIN)
    detections = [gas(n, district) for n, district in enumerate("abcde")]
    decision = book(storm=storm).apply(detections, T0, NOTHING_SENT)
    verdicts = [m.verdict for m in decision.mail]
    assert verdicts == [Verdict.SEND] * 2 + [Verdict.FOLD] * 3
    sent = {"gas-emergency": {m.key: T0 for m in decision.mail if m.verdict is Verdict.SEND}}
    held = [m for m in decision.mail if m.verdict is Verdict.FOLD]
    folded = [
        Folded(100 + i, m.key, "gas-emergency", m.messages[0].incident_id)
        for i, m in enumerate(held)
    ]
    waiting = OutboxView(sent, {"gas-emergency": folded})
    assert decision.book.tick(T0 + 30_000, waiting).mail == ()  # the window is still full
    [digest] = decision.book.tick(T0 + MIN + 1, waiting).mail
    assert digest.key == "digest:gas-emergency:100" and digest.digested == (100, 101, 102)
    body = json.loads(digest.messages[0].body)
    assert body["event"] == "digest" and body["count"] == 3


def test_a_tick_past_the_deadline_escalates_from_the_stored_times():
    flood = Detection(
        "water-rise", Category.FLOOD, "wl-1", DetectionState.FIRING, Severity.RED, T0, 1.0,
        "wl-1", "level_m", "dongcheng", None,
    )
    opened = book().apply([flood], T0, NOTHING_SENT).book
    restored = book(alerts=AlertBook.restore(opened.alerts.alerts.values()),
                    incidents=opened.incidents, policies=opened.policies)
    [(before, after)] = restored.tick(T0 + 5 * MIN, NOTHING_SENT).incidents
    assert before is not None and before.escalation_level == 0
    assert (after.escalation_level, after.team_id) == (1, "flood-control")
