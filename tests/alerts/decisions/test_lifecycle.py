"""Alert lifecycle and flapping, table-tested with explicit `now`."""

from __future__ import annotations

import pytest

from alerts.decisions.lifecycle import AlertBook, LifecycleConfig
from alerts.errors import TransitionError, UnknownAlertError
from alerts.model import AlertState, TransitionKind
from rules.detection import Category, Detection, DetectionState, Severity

P, F, C = DetectionState.PENDING, DetectionState.FIRING, DetectionState.CLEARED
Y, OR, R = Severity.YELLOW, Severity.ORANGE, Severity.RED
MIN = 60_000


def det(state, ts_ms, severity=Y, rule="pm25-heavy", subject="aq-1", value=1.0):
    return Detection(
        rule, Category.ENVIRONMENT, subject, state, severity, ts_ms, value,
        device_id=subject, metric="pm25", district="dongcheng", grid="g-1-1",
    )  # fmt: skip


def run(steps, config=LifecycleConfig()):
    """Apply each step's detections at its `now`; return the book and all transitions."""
    book, out = AlertBook(config=config), []
    for now_ms, dets in steps:
        book, ts = book.apply(dets, now_ms)
        out.extend(ts)
    return book, out


CASES = [
    ("pending-then-firing", [(0, [det(P, 0)]), (MIN, [det(F, MIN)])],
     ["pending", "firing"], [False, True], AlertState.FIRING),
    ("firing-directly", [(0, [det(F, 0)])], ["firing"], [True], AlertState.FIRING),
    ("escalate-yellow-orange-red", [(0, [det(F, 0)]), (1, [det(F, 1, OR)]), (2, [det(F, 2, R)])],
     ["firing", "severity", "severity"], [True, True, True], AlertState.FIRING),
    ("de-escalation-recorded-not-notified", [(0, [det(F, 0, R)]), (1, [det(F, 1, OR)])],
     ["firing", "severity"], [True, False], AlertState.FIRING),
    ("same-severity-repeat-is-silent", [(0, [det(F, 0)]), (1, [det(F, 1, value=2)])],
     ["firing"], [True], AlertState.FIRING),
    ("firing-then-cleared-notifies", [(0, [det(F, 0)]), (1, [det(C, 1)])],
     ["firing", "cleared"], [True, True], AlertState.CLEARED),
    ("pending-then-cleared-is-quiet", [(0, [det(P, 0)]), (1, [det(C, 1)])],
     ["pending", "cleared"], [False, False], AlertState.CLEARED),
    ("clear-without-alert-ignored", [(0, [det(C, 0)])], [], [], None),
    ("cleared-refires-reopens", [(0, [det(F, 0)]), (1, [det(C, 1)]), (2, [det(F, 2)])],
     ["firing", "cleared", "firing"], [True, True, True], AlertState.FIRING),
    ("late-detection-ignored", [(0, [det(F, 5)]), (6, [det(C, 3)])],
     ["firing"], [True], AlertState.FIRING),
    ("unordered-batch-applied-by-time", [(9, [det(C, 9), det(F, 1)])],
     ["firing", "cleared"], [True, True], AlertState.CLEARED),
    ("cleared-closes-after-grace", [(0, [det(F, 0)]), (1, [det(C, 1)]), (1 + 60 * MIN, [])],
     ["firing", "cleared", "closed"], [True, True, False], None),
]  # fmt: skip


@pytest.mark.parametrize(("steps", "kinds", "notify", "final"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_lifecycle(steps, kinds, notify, final):
    book, out = run(steps)
    assert [t.kind.value for t in out] == kinds
    assert [t.notify for t in out] == notify
    alert = book.alerts.get(("pm25-heavy", "aq-1"))
    assert (alert.state if alert else None) == final


def test_one_open_alert_per_rule_and_subject():
    book, out = run([(0, [det(F, 0), det(F, 0, subject="aq-2"), det(F, 0, rule="pm10")]),
                     (1, [det(F, 1, OR)])])  # fmt: skip
    assert len(book.alerts) == 3
    assert len({t.alert.id for t in out}) == 3


def test_severity_history_is_recorded():
    book, _ = run([(0, [det(F, 0)]), (1, [det(F, 1, OR)]), (2, [det(F, 2, R)])])
    alert = book.alerts[("pm25-heavy", "aq-1")]
    assert [(c.ts_ms, c.severity) for c in alert.history] == [(0, Y), (1, OR), (2, R)]
    assert alert.severity is R


def test_reopened_alert_keeps_its_id():
    _, out = run([(0, [det(F, 0)]), (1, [det(C, 1)]), (2, [det(F, 2)])])
    assert out[0].alert.id == out[2].alert.id
    assert out[2].alert.cleared_ms is None


def test_replaying_a_batch_adds_nothing():
    book, _ = run([(0, [det(F, 0), det(F, 1, OR)])])
    again, out = book.apply([det(F, 0), det(F, 1, OR)], 1)
    assert out == ()
    assert again.alerts == book.alerts


def test_acknowledge_and_close_by_operator():
    book, out = run([(0, [det(F, 0)])])
    alert_id = out[0].alert.id
    book, ack = book.acknowledge(alert_id, "alice", 5)
    assert ack.alert.state is AlertState.ACKNOWLEDGED
    assert ack.alert.history[-1].actor == "alice"
    book, escalated = book.apply([det(F, 6, R)], 6)
    assert escalated[0].kind is TransitionKind.SEVERITY and escalated[0].notify
    assert escalated[0].alert.state is AlertState.ACKNOWLEDGED  # ack survives escalation
    with pytest.raises(TransitionError, match="acknowledged to acknowledged"):
        book.acknowledge(alert_id, "bob", 7)
    book, closed = book.close(alert_id, "alice", 8)
    assert closed.alert.state is AlertState.CLOSED and not book.alerts
    with pytest.raises(UnknownAlertError):
        book.close(alert_id, "alice", 9)


def test_acknowledge_pending_is_refused():
    book, out = run([(0, [det(P, 0)])])
    with pytest.raises(TransitionError):
        book.acknowledge(out[0].alert.id, "alice", 1)


def test_restore_skips_closed_alerts():
    book, out = run([(0, [det(F, 0), det(F, 0, subject="aq-2")])])
    _, closed = book.close(out[0].alert.id, "ops", 1)
    restored = AlertBook.restore([closed.alert, out[1].alert])
    assert list(restored.alerts) == [("pm25-heavy", "aq-2")]


FLAP = LifecycleConfig(flap_window_ms=10 * MIN, flap_max_changes=4, flap_quiet_ms=5 * MIN)


def flaps(n, every_ms=MIN):
    """n alternating fire/clear detections, one per `every_ms`."""
    return [(i * every_ms, [det(F if i % 2 == 0 else C, i * every_ms)]) for i in range(n)]


FLAP_CASES = [
    ("four-changes-not-flapping", flaps(4), False, 0),
    ("five-changes-flapping", flaps(5), True, 1),
    ("slow-changes-never-flap", flaps(8, every_ms=3 * MIN), False, 0),
    ("settles-after-quiet", [*flaps(6), (5 * MIN + 5 * MIN, [])], False, 1),
    ("not-settled-before-quiet", [*flaps(6), (5 * MIN + 5 * MIN - 1, [])], True, 1),
]


@pytest.mark.parametrize(("steps", "flapping", "n_flapping"), [c[1:] for c in FLAP_CASES],
                         ids=[c[0] for c in FLAP_CASES])  # fmt: skip
def test_flapping(steps, flapping, n_flapping):
    book, out = run(steps, FLAP)
    alert = book.alerts[("pm25-heavy", "aq-1")]
    assert alert.flapping is flapping
    assert sum(t.kind is TransitionKind.FLAPPING for t in out) == n_flapping


def test_flapping_holds_notifications_until_settled():
    steps = [*flaps(7), (6 * MIN + 5 * MIN, [])]
    _, out = run(steps, FLAP)
    start = next(i for i, t in enumerate(out) if t.kind is TransitionKind.FLAPPING)
    held = [t for t in out[start + 1 :] if t.kind is not TransitionKind.SETTLED]
    assert held and all(t.suppressed_by == "flapping" and not t.dispatchable for t in held)
    settled = out[-1]
    assert settled.kind is TransitionKind.SETTLED and settled.dispatchable
    assert settled.alert.state is AlertState.FIRING  # the truth is announced once
