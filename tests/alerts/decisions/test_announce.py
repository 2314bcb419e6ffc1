"""A silence or inhibition hides a firing alert; once it ends and the alert still fires, the
alert is dispatched, exactly once (`Book.apply` / `Book.tick`, no database)."""

from __future__ import annotations

from alerts.decisions.book import Book, Decision
from alerts.decisions.lifecycle import AlertBook
from alerts.decisions.planning import OutboxView
from alerts.decisions.silences import Field, Matcher, Silence
from alerts.model import TransitionKind
from alerts.routing import load_routing
from rules.detection import Category, Detection, DetectionState, Severity

T0 = 1_717_200_000_000
MIN = 60_000
NOTHING_SENT = OutboxView()
FIRING, CLEARED = DetectionState.FIRING, DetectionState.CLEARED


def detection(rule: str, category: Category, device: str, metric: str, severity: Severity,
              state: DetectionState = FIRING, ts_ms: int = T0) -> Detection:  # fmt: skip
    return Detection(rule, category, device, state, severity, ts_ms, 80.0, device, metric,
                     "dongcheng", "dongcheng-3-4")  # fmt: skip


def gas(state: DetectionState = FIRING, ts_ms: int = T0) -> Detection:
    return detection("gas-high", Category.SAFETY, "gas-1", "ch4", Severity.RED, state, ts_ms)


def offline(state: DetectionState = FIRING, ts_ms: int = T0) -> Detection:
    return detection("device-offline", Category.DEVICE, "aq-1", "pm25", Severity.BLUE, state,
                     ts_ms)  # fmt: skip


def pm25(rule: str, severity: Severity, state: DetectionState = FIRING,
         ts_ms: int = T0) -> Detection:  # fmt: skip
    return detection(rule, Category.ENVIRONMENT, "aq-1", "pm25", severity, state, ts_ms)


def book(*silences: Silence) -> Book:
    return Book(load_routing(), device_types={"gas-1": "gas", "aq-1": "air_quality"},
                silences=silences)  # fmt: skip


def dispatched(decision: Decision) -> list[str]:
    """The rule ids of the alerts in incidents this decision dispatched."""
    return [
        m.rule_id
        for before, after in decision.incidents
        if before is None
        for m in after.members
    ]


def until(minute: int) -> Silence:
    return Silence("s-1", (Matcher(Field.DEVICE, "gas-1"),), T0 - MIN, T0 + minute * MIN,
                   "op", "valve works")  # fmt: skip


def test_silence_ends_while_the_alert_still_fires_it_is_dispatched_at_the_first_tick_after():
    silenced = book(until(5)).apply([gas()], T0, NOTHING_SENT)
    assert silenced.incidents == () and silenced.mail == ()
    during = silenced.book.tick(T0 + 5 * MIN - 1, NOTHING_SENT)
    assert during.incidents == () and during.mail == ()
    after = during.book.tick(T0 + 5 * MIN, NOTHING_SENT)
    assert dispatched(after) == ["gas-high"]
    [t] = after.transitions
    assert (t.kind, t.suppressed_by, t.alert.notified) == (TransitionKind.UNMUTED, None, True)
    assert [m.key.split(":")[1] for m in after.mail] == ["dispatched"]
    again = after.book.tick(T0 + 6 * MIN, NOTHING_SENT)
    assert again.transitions == () and again.mail == ()


def test_silence_ends_after_the_alert_cleared_nothing_is_sent():
    silenced = book(until(5)).apply([gas()], T0, NOTHING_SENT)
    cleared = silenced.book.apply([gas(CLEARED, T0 + MIN)], T0 + MIN, NOTHING_SENT)
    after = cleared.book.tick(T0 + 5 * MIN, NOTHING_SENT)
    assert after.transitions == () and after.incidents == () and after.mail == ()


def test_silence_removed_early_the_alert_is_dispatched_at_the_next_tick():
    silenced = book(until(60)).apply([gas()], T0, NOTHING_SENT)
    lifted = silenced.book.without_silence("s-1").tick(T0 + MIN, NOTHING_SENT)
    assert dispatched(lifted) == ["gas-high"]


def test_the_notified_mark_survives_a_restore_so_it_is_sent_once():
    sent = book().apply([gas()], T0, NOTHING_SENT)
    assert dispatched(sent) == ["gas-high"]
    restored = Book(sent.book.routing, alerts=AlertBook.restore(sent.book.open_alerts()))
    assert restored.tick(T0 + MIN, NOTHING_SENT).transitions == ()
    silenced = book(until(5)).apply([gas()], T0, NOTHING_SENT).book
    restored = Book(silenced.routing, alerts=AlertBook.restore(silenced.open_alerts()))
    assert dispatched(restored.tick(T0 + 5 * MIN, NOTHING_SENT)) == ["gas-high"]


def test_device_back_online_while_its_value_alert_fires_the_value_alert_is_dispatched():
    down = book().apply([offline(), pm25("pm25-heavy", Severity.ORANGE)], T0, NOTHING_SENT)
    assert dispatched(down) == ["device-offline"]
    [value] = [t for t in down.transitions if t.alert.rule_id == "pm25-heavy"]
    assert value.suppressed_by is not None and value.suppressed_by.startswith("inhibit:")
    back = down.book.apply([offline(CLEARED, T0 + MIN)], T0 + MIN, NOTHING_SENT)
    assert dispatched(back) == ["pm25-heavy"]
    [unmuted] = [t for t in back.transitions if t.kind is TransitionKind.UNMUTED]
    assert unmuted.alert.rule_id == "pm25-heavy"


def test_inhibition_lifts_after_the_target_cleared_nothing_is_sent():
    down = book().apply([offline(), pm25("pm25-heavy", Severity.ORANGE)], T0, NOTHING_SENT)
    gone = down.book.apply([pm25("pm25-heavy", Severity.ORANGE, CLEARED, T0 + MIN)],
                           T0 + MIN, NOTHING_SENT)  # fmt: skip
    back = gone.book.apply([offline(CLEARED, T0 + 2 * MIN)], T0 + 2 * MIN, NOTHING_SENT)
    assert [t.kind for t in back.transitions] == [TransitionKind.CLEARED]


def test_red_clears_while_orange_on_the_same_subject_still_fires_orange_is_dispatched():
    both = [pm25("pm25-severe", Severity.RED), pm25("pm25-heavy", Severity.ORANGE)]
    red = book().apply(both, T0, NOTHING_SENT)
    assert dispatched(red) == ["pm25-severe"]
    cleared = red.book.apply([pm25("pm25-severe", Severity.RED, CLEARED, T0 + MIN)],
                             T0 + MIN, NOTHING_SENT)  # fmt: skip
    orange = [t for t in cleared.transitions if t.alert.rule_id == "pm25-heavy"]
    assert [t.kind for t in orange] == [TransitionKind.UNMUTED]
    [(_, incident)] = cleared.incidents
    assert "pm25-heavy" in [m.rule_id for m in incident.members]


def test_an_alert_that_refires_while_silenced_is_dispatched_again_when_the_silence_ends():
    sent = book().apply([gas()], T0, NOTHING_SENT)
    cleared = sent.book.apply([gas(CLEARED, T0 + MIN)], T0 + MIN, NOTHING_SENT)
    silenced = cleared.book.with_silence(until(10))
    refired = silenced.apply([gas(FIRING, T0 + 2 * MIN)], T0 + 2 * MIN, NOTHING_SENT)
    [t] = refired.transitions
    assert t.suppressed_by == "silence:s-1" and not t.alert.notified
    after = refired.book.tick(T0 + 10 * MIN, NOTHING_SENT)
    assert [t.kind for t in after.transitions] == [TransitionKind.UNMUTED]
