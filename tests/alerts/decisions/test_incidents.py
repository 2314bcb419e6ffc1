"""Grouping alerts into incidents, and the incident state machine."""

from __future__ import annotations

import pytest

from alerts.decisions import incidents as machine
from alerts.decisions.grouping import GroupingConfig, IncidentBook
from alerts.errors import NotClosableError, NoteLimitError, TransitionError
from alerts.model import Alert, AlertState, IncidentState, TimelineKind, Transition, TransitionKind
from rules.detection import Category, Severity

MIN = 60_000
S = IncidentState


def alert(n, district="dongcheng", grid="g-1-1", category=Category.FLOOD,
          severity=Severity.YELLOW, ts_ms=0, state=AlertState.FIRING):  # fmt: skip
    dev = f"wl-{n}"
    return Alert(f"a{n}", "water-rise", dev, category, severity, state, ts_ms, ts_ms, 1.0,
                 device_id=dev, district=district, grid=grid)  # fmt: skip


def fire(a, kind=TransitionKind.FIRING, suppressed=None):
    return Transition(a, kind, a.updated_ms, None, None, True, suppressed)


def clear(a):
    cleared = Alert(**{**a.__dict__, "state": AlertState.CLEARED})
    return Transition(cleared, TransitionKind.CLEARED, a.updated_ms, a.state, a.severity, True)


NEIGHBOURS = {"g-1-1": frozenset({"g-1-2"}), "g-1-2": frozenset({"g-1-1", "g-1-3"})}


def group(transitions, now_ms=0, window_ms=30 * MIN):
    book = IncidentBook(config=GroupingConfig(window_ms=window_ms), neighbours=NEIGHBOURS)
    return book.apply(transitions, now_ms)


def test_a_flood_across_a_district_is_one_incident():
    alerts = [alert(n, grid=f"g-{n % 5}-{n % 3}", ts_ms=n * 1000) for n in range(40)]
    book, events = group([fire(a) for a in alerts], now_ms=40_000)
    assert len(book.incidents) == 1
    incident = next(iter(book.incidents.values()))
    assert incident.title == "Flood warning — dongcheng (40 devices)"
    assert len(incident.alert_ids) == 40 and incident.state is S.NEW
    assert [e.entry.kind for e in events].count(TimelineKind.OPENED) == 1


GROUP_CASES = [
    ("same-district", [alert(1), alert(2)], 1),
    ("other-district-same-grid", [alert(1), alert(2, district="xicheng")], 1),
    ("neighbouring-cells", [alert(1, district=None), alert(2, district=None, grid="g-1-2")], 1),
    ("non-neighbouring-cells", [alert(1, district=None),
                                alert(2, district=None, grid="g-1-3")], 2),
    ("other-category", [alert(1), alert(2, category=Category.FIRE)], 2),
    ("outside-window-still-firing", [alert(1), alert(2, ts_ms=31 * MIN)], 1),
    ("info-opens-none", [alert(1, severity=Severity.INFO)], 0),
]  # fmt: skip


@pytest.mark.parametrize(("alerts", "n"), [c[1:] for c in GROUP_CASES],
                         ids=[c[0] for c in GROUP_CASES])  # fmt: skip
def test_grouping(alerts, n):
    book, _ = group([fire(a) for a in alerts])
    assert len(book.incidents) == n


@pytest.mark.parametrize(("later_ms", "n"), [(30 * MIN, 1), (31 * MIN, 2)],
                         ids=["inside-window", "outside-window"])
def test_after_its_alerts_cleared_an_incident_takes_alerts_for_the_window(later_ms, n):
    first = alert(1)
    book, _ = group([fire(first), clear(first), fire(alert(2, ts_ms=later_ms))])
    assert len(book.incidents) == n
    second = next(i for i in book.incidents.values() if "a2" in i.alert_ids)
    assert second.alert_ids == (("a1", "a2") if n == 1 else ("a2",))


def test_muted_alerts_open_no_incident():
    book, events = group([fire(alert(1), suppressed="silence:s1")])
    assert not book.incidents and not events


def test_severity_is_the_highest_and_recorded():
    book, _ = group([fire(alert(1))])
    book, events = book.apply([fire(alert(2, severity=Severity.RED))], 1)
    incident = next(iter(book.incidents.values()))
    assert incident.severity is Severity.RED
    assert [e.entry.kind for e in events] == [TimelineKind.ALERT_ADDED, TimelineKind.SEVERITY]
    assert events[-1].entry.detail == "yellow → red"


def responded(incident, now_ms=10):
    incident = machine.dispatch(incident, "water-authority", "drainage-crew", "router", now_ms)
    incident = machine.acknowledge(incident, "li", now_ms + 1)
    return machine.resolve(incident, "li", now_ms + 2, "pumps running")


def test_closes_when_resolved_and_all_alerts_cleared():
    a1, a2 = alert(1), alert(2)
    book, _ = group([fire(a1), fire(a2)])
    incident = responded(next(iter(book.incidents.values())))
    with pytest.raises(NotClosableError, match="alerts still active: a1, a2"):
        machine.close(incident, "li", 20)
    book = book.put(incident)
    book, _ = book.apply([clear(a1)], 30)
    assert book.incidents[incident.id].state is S.RESOLVED
    book, events = book.apply([clear(a2)], 40)
    assert not book.incidents  # closed incidents leave the book
    assert events[-1].incident.state is S.CLOSED and events[-1].incident.closed_ms == 40


def test_alerts_cleared_before_resolution_close_on_manual_close():
    book, _ = group([fire(alert(1))])
    book, _ = book.apply([clear(alert(1))], 5)
    incident = responded(next(iter(book.incidents.values())))
    closed = machine.close(incident, "li", 50)
    assert closed.state is S.CLOSED and closed.timeline[-1].actor == "li"


def new_incident():
    book, _ = group([fire(alert(1))])
    return next(iter(book.incidents.values()))


STEPS = {
    "dispatch": lambda i: machine.dispatch(i, "h", "t", "router", 1),
    "ack": lambda i: machine.acknowledge(i, "u", 2),
    "en_route": lambda i: machine.en_route(i, "u", 3),
    "on_scene": lambda i: machine.on_scene(i, "u", 4),
    "resolve": lambda i: machine.resolve(i, "u", 5),
    "reassign": lambda i: machine.reassign(i, "h2", "t2", "ops", 6, "wrong team"),
    "cancel": lambda i: machine.cancel(i, "ops", 7, "false alarm"),
}
VALID = [
    ("full-path", ["dispatch", "ack", "en_route", "on_scene", "resolve"], S.RESOLVED),
    ("ack-then-resolve", ["dispatch", "ack", "resolve"], S.RESOLVED),
    ("reassign-then-redispatch", ["dispatch", "reassign", "dispatch", "ack"], S.ACKNOWLEDGED),
    ("reassign-on-scene", ["dispatch", "ack", "on_scene", "reassign"], S.REASSIGNED),
    ("cancel-new", ["cancel"], S.CANCELLED),
    ("cancel-en-route", ["dispatch", "ack", "en_route", "cancel"], S.CANCELLED),
]
INVALID = [
    ("ack-before-dispatch", ["ack"]),
    ("resolve-unacknowledged", ["dispatch", "resolve"]),
    ("en-route-from-new", ["en_route"]),
    ("dispatch-twice", ["dispatch", "dispatch"]),
    ("after-cancel", ["cancel", "dispatch"]),
    ("cancel-resolved", ["dispatch", "ack", "resolve", "cancel"]),
    ("reassign-new", ["reassign"]),
]


@pytest.mark.parametrize(("steps", "final"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_incident_transitions(steps, final):
    incident = new_incident()
    for step in steps:
        incident = STEPS[step](incident)
    assert incident.state is final
    state_entries = [e for e in incident.timeline if e.kind.value in set(S)]
    assert len(state_entries) == len(steps)
    assert all(e.actor and e.ts_ms >= 0 for e in incident.timeline)


@pytest.mark.parametrize("steps", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_incident_transitions(steps):
    incident = new_incident()
    for step in steps[:-1]:
        incident = STEPS[step](incident)
    with pytest.raises(TransitionError, match=f"incident {incident.id}: cannot go"):
        STEPS[steps[-1]](incident)


def test_notes_notifications_and_assignment_are_on_the_timeline():
    incident = machine.dispatch(new_incident(), "gas-company", "gas-emergency", "router", 100)
    incident = machine.notified(incident, "dispatcher", 101, "webhook ok")
    incident = machine.note(incident, "li", 102, "smell reported by residents", 500)
    assert (incident.handler_id, incident.team_id, incident.dispatched_ms) == (
        "gas-company", "gas-emergency", 100)  # fmt: skip
    assert incident.last_notified_ms == 101
    assert [(e.kind, e.actor) for e in incident.timeline[-3:]] == [
        (TimelineKind.DISPATCHED, "router"), (TimelineKind.NOTIFIED, "dispatcher"),
        (TimelineKind.NOTE, "li")]  # fmt: skip


def test_notes_stop_at_the_limit_and_other_entries_do_not_count():
    incident = machine.dispatch(new_incident(), "gas-company", "gas-emergency", "router", 100)
    incident = machine.note(incident, "li", 101, "one", 2)
    incident = machine.notified(incident, "dispatcher", 102, "webhook ok")
    incident = machine.note(incident, "li", 103, "two", 2)
    with pytest.raises(NoteLimitError, match="2 notes"):
        machine.note(incident, "li", 104, "three", 2)


def test_escalate_only_upwards_while_dispatched():
    incident = machine.dispatch(new_incident(), "h", "t", "router", 0)
    up = machine.escalate(incident, 1, "ecc", "ecc-duty", "escalator", 5 * MIN)
    assert (up.escalation_level, up.team_id, up.escalated_ms) == (1, "ecc-duty", 5 * MIN)
    with pytest.raises(TransitionError):
        machine.escalate(up, 1, "ecc", "ecc-duty", "escalator", 6 * MIN)
    with pytest.raises(TransitionError):
        machine.escalate(machine.acknowledge(up, "u", 1), 2, "x", "y", "escalator", 7 * MIN)
