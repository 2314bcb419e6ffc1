"""Silences (one-off and weekly, across DST; Alertmanager-style matchers), inhibition and the
mute stage."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from alerts.decisions.inhibit import Inhibitor, InhibitPolicy
from alerts.decisions.mute import mute
from alerts.decisions.silences import (
    MAX_PATTERN,
    Field,
    Matcher,
    Op,
    Silence,
    Weekly,
    muting_silence,
)
from alerts.errors import SilenceError
from alerts.model import Alert, AlertState, Transition, TransitionKind
from rules.detection import Category, Severity


def alert(id="a1", rule="pm25-heavy", subject="aq-1", category=Category.ENVIRONMENT,
          severity=Severity.ORANGE, state=AlertState.FIRING, device="aq-1",
          district="dongcheng", grid="g-1-1"):  # fmt: skip
    return Alert(id, rule, subject, category, severity, state, 0, 0, 1.0,
                 device_id=device, district=district, grid=grid)  # fmt: skip


def ms(tz, *args):
    return int(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def utc_ms(*args):
    return ms("UTC", *args)


TYPES = {"aq-1": "air_quality", "gas-1": "gas"}
ONE_OFF = Silence("s1", (Matcher(Field.DISTRICT, "dongcheng"),), 1000, 2000, "ops", "works")

MATCH_CASES = [
    ("device", Matcher(Field.DEVICE, "aq-1"), True),
    ("other-device", Matcher(Field.DEVICE, "aq-2"), False),
    ("grid", Matcher(Field.GRID, "g-1-1"), True),
    ("district", Matcher(Field.DISTRICT, "xicheng"), False),
    ("rule", Matcher(Field.RULE, "pm25-heavy"), True),
    ("category", Matcher(Field.CATEGORY, "environment"), True),
    ("category-other", Matcher(Field.CATEGORY, "flood"), False),
    ("severity", Matcher(Field.SEVERITY, "orange"), True),
    ("severity-other", Matcher(Field.SEVERITY, "red"), False),
    ("device-type", Matcher(Field.DEVICE_TYPE, "air_quality"), True),
    ("device-type-other", Matcher(Field.DEVICE_TYPE, "gas"), False),
    ("not-equal", Matcher(Field.DEVICE_TYPE, "gas", Op.NOT_EQUAL), True),
    ("not-equal-same", Matcher(Field.SEVERITY, "orange", Op.NOT_EQUAL), False),
    ("regex", Matcher(Field.SEVERITY, "yellow|orange", Op.REGEX), True),
    ("regex-is-anchored", Matcher(Field.DEVICE, "aq", Op.REGEX), False),
    ("regex-whole-value", Matcher(Field.DEVICE, "aq-[0-9]+", Op.REGEX), True),
    ("regex-other", Matcher(Field.RULE, "pm10-.*", Op.REGEX), False),
    ("not-regex", Matcher(Field.RULE, "pm10-.*", Op.NOT_REGEX), True),
    ("not-regex-hit", Matcher(Field.GRID, "g-1-.*", Op.NOT_REGEX), False),
]


@pytest.mark.parametrize(("matcher", "expected"), [c[1:] for c in MATCH_CASES],
                         ids=[c[0] for c in MATCH_CASES])  # fmt: skip
def test_silence_matchers(matcher, expected):
    assert matcher.matches(alert(), TYPES) is expected


def test_all_matchers_must_match():
    both = (Matcher(Field.DEVICE, "aq-1"), Matcher(Field.RULE, "other"))
    assert not Silence("s", both, 0, 10, "ops", "x").matches(alert(), TYPES)


MISSING_CASES = [
    # an alert without a device (a district-wide rule) has "" for device and device type
    ("equal-misses", Matcher(Field.DEVICE_TYPE, "gas"), False),
    ("not-equal-holds", Matcher(Field.DEVICE_TYPE, "gas", Op.NOT_EQUAL), True),
    ("regex-empty-allowed", Matcher(Field.DEVICE, "(aq-.*)?", Op.REGEX), True),
    ("not-regex-holds", Matcher(Field.DEVICE, "aq-.*", Op.NOT_REGEX), True),
]


@pytest.mark.parametrize(("matcher", "expected"), [c[1:] for c in MISSING_CASES],
                         ids=[c[0] for c in MISSING_CASES])  # fmt: skip
def test_a_missing_field_reads_as_empty(matcher, expected):
    silence = Silence("s", (Matcher(Field.DISTRICT, "dongcheng"), matcher), 0, 10, "ops", "x")
    assert silence.matches(alert(device=None), TYPES) is expected


def test_an_unregistered_device_has_no_type():
    silence = Silence("s", (Matcher(Field.DEVICE_TYPE, ".+", Op.REGEX),), 0, 10, "ops", "x")
    assert silence.matches(alert(device="aq-1"), TYPES)
    assert not silence.matches(alert(device="aq-404"), TYPES)


WINDOW_CASES = [(999, False), (1000, True), (1999, True), (2000, False)]


@pytest.mark.parametrize(("now_ms", "active"), WINDOW_CASES,
                         ids=["before", "start", "inside", "end-exclusive"])  # fmt: skip
def test_one_off_window(now_ms, active):
    assert (muting_silence(alert(), [ONE_OFF], now_ms, TYPES) is ONE_OFF) is active


SUNDAY_NIGHT = Weekly(frozenset({6}), time(2), time(4), "Europe/Berlin")
SAT_LATE = Weekly(frozenset({5}), time(23), time(1), "Asia/Shanghai")
WEEKLY_CASES = [
    # Berlin, ordinary Sunday (CEST): 02:00-04:00 local = 00:00-02:00 UTC
    ("sunday-inside", SUNDAY_NIGHT, utc_ms(2024, 6, 2, 0, 30), True),
    ("sunday-before", SUNDAY_NIGHT, utc_ms(2024, 6, 1, 23, 59), False),
    ("sunday-end-exclusive", SUNDAY_NIGHT, utc_ms(2024, 6, 2, 2, 0), False),
    ("monday-same-hour", SUNDAY_NIGHT, ms("Europe/Berlin", 2024, 6, 3, 3, 0), False),
    # spring forward, Sun 31 Mar 2024: 02:00 does not exist; window is 01:00-02:00 UTC (1 h)
    ("dst-spring-before", SUNDAY_NIGHT, utc_ms(2024, 3, 31, 0, 59), False),
    ("dst-spring-inside", SUNDAY_NIGHT, utc_ms(2024, 3, 31, 1, 30), True),
    ("dst-spring-after", SUNDAY_NIGHT, utc_ms(2024, 3, 31, 2, 0), False),
    # fall back, Sun 27 Oct 2024: 02:00 CEST = 00:00 UTC to 04:00 CET = 03:00 UTC (3 h)
    ("dst-fall-start", SUNDAY_NIGHT, utc_ms(2024, 10, 27, 0, 0), True),
    ("dst-fall-third-hour", SUNDAY_NIGHT, utc_ms(2024, 10, 27, 2, 30), True),
    ("dst-fall-after", SUNDAY_NIGHT, utc_ms(2024, 10, 27, 3, 0), False),
    # Shanghai (UTC+8), window over midnight: Sat 23:00 - Sun 01:00 local
    ("midnight-saturday-part", SAT_LATE, ms("Asia/Shanghai", 2024, 6, 1, 23, 30), True),
    ("midnight-sunday-part", SAT_LATE, ms("Asia/Shanghai", 2024, 6, 2, 0, 30), True),
    ("midnight-sunday-after", SAT_LATE, ms("Asia/Shanghai", 2024, 6, 2, 1, 0), False),
    ("midnight-friday-night", SAT_LATE, ms("Asia/Shanghai", 2024, 5, 31, 23, 30), False),
    ("tz-matters", SAT_LATE, utc_ms(2024, 6, 1, 23, 30), False),  # = Sun 07:30 in Shanghai
]


@pytest.mark.parametrize(("weekly", "now_ms", "active"), [c[1:] for c in WEEKLY_CASES],
                         ids=[c[0] for c in WEEKLY_CASES])  # fmt: skip
def test_weekly_recurring(weekly, now_ms, active):
    silence = Silence("w", (Matcher(Field.DEVICE, "aq-1"),), 0, None, "ops", "weekly", weekly)
    assert silence.active_at(now_ms) is active


def test_weekly_outside_its_validity_span():
    silence = Silence("w", (Matcher(Field.DEVICE, "aq-1"),), utc_ms(2024, 6, 3), None, "ops",
                      "from June 3", SUNDAY_NIGHT)  # fmt: skip
    assert not silence.active_at(utc_ms(2024, 6, 2, 0, 30))
    assert silence.active_at(utc_ms(2024, 6, 9, 0, 30))


BAD_SILENCES = [
    ("no-matchers", lambda: Silence("s", (), 0, 1, "ops", "x"), "matcher"),
    ("ends-before-start", lambda: Silence("s", (Matcher(Field.RULE, "r"),), 5, 5, "ops", "x"),
     "ends before"),
    ("one-off-without-end", lambda: Silence("s", (Matcher(Field.RULE, "r"),), 0, None, "o", "x"),
     "needs an end"),
    ("no-author", lambda: Silence("s", (Matcher(Field.RULE, "r"),), 0, 1, " ", "x"), "author"),
    ("bad-tz", lambda: Weekly(frozenset({6}), time(2), time(4), "Mars/Olympus"), "time zone"),
    ("bad-weekday", lambda: Weekly(frozenset({7}), time(2), time(4), "UTC"), "weekdays"),
    ("bad-regex", lambda: Matcher(Field.RULE, "pm25-(", Op.REGEX), "invalid regular expression"),
    ("bad-negated-regex", lambda: Matcher(Field.RULE, "[z-a]", Op.NOT_REGEX),
     "invalid regular expression"),
    ("long-regex", lambda: Matcher(Field.RULE, "a" * (MAX_PATTERN + 1), Op.REGEX), "longer than"),
    ("only-negative", lambda: Silence("s", (Matcher(Field.RULE, "r", Op.NOT_EQUAL),), 0, 1, "o",
     "x"), "does not match an empty value"),
    ("match-all-regex", lambda: Silence("s", (Matcher(Field.RULE, ".*", Op.REGEX),), 0, 1, "o",
     "x"), "does not match an empty value"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in BAD_SILENCES],
                         ids=[c[0] for c in BAD_SILENCES])  # fmt: skip
def test_invalid_silences(build, message):
    with pytest.raises(SilenceError, match=message):
        build()


OFFLINE = dict(rule="device-offline", category=Category.DEVICE, severity=Severity.YELLOW)
POLICY = InhibitPolicy(gateways={"aq-1": "gw-1", "aq-2": "gw-1"})
INHIBIT_CASES = [
    ("offline-suppresses-value-alert", [alert("off", subject="aq-1", **OFFLINE)],
     alert("v"), "off"),
    ("pending-offline-does-not", [alert("off", state=AlertState.PENDING, **OFFLINE)],
     alert("v"), None),
    ("other-device-offline-does-not", [alert("off", subject="aq-9", device="aq-9", **OFFLINE)],
     alert("v"), None),
    ("red-suppresses-orange-same-subject", [alert("red", rule="pm25-severe",
     severity=Severity.RED)], alert("v"), "red"),
    ("red-suppresses-yellow", [alert("red", rule="pm25-severe", severity=Severity.RED)],
     alert("v", severity=Severity.YELLOW), "red"),
    ("red-other-subject-does-not", [alert("red", rule="x", subject="aq-2", device="aq-2",
     severity=Severity.RED)], alert("v"), None),
    ("cleared-red-does-not", [alert("red", rule="x", severity=Severity.RED,
     state=AlertState.CLEARED)], alert("v"), None),
    ("red-not-suppressed-by-red", [alert("red", rule="x", severity=Severity.RED)],
     alert("v", severity=Severity.RED), None),
    ("gateway-offline-suppresses-child-offline", [alert("gw", subject="gw-1", device="gw-1",
     **OFFLINE)], alert("child", subject="aq-1", **OFFLINE), "gw"),
    ("gateway-offline-spares-child-values", [alert("gw", subject="gw-1", device="gw-1",
     **OFFLINE)], alert("v"), None),
    ("offline-alert-not-self-inhibited", [alert("off", **OFFLINE)], alert("off", **OFFLINE),
     None),
    ("custom-offline-rule-id", [alert("off", rule="stale", category=Category.DEVICE)],
     alert("v"), None),
]  # fmt: skip


@pytest.mark.parametrize(("sources", "target", "by"), [c[1:] for c in INHIBIT_CASES],
                         ids=[c[0] for c in INHIBIT_CASES])  # fmt: skip
def test_inhibition(sources, target, by):
    source = Inhibitor.build(sources, POLICY).inhibited_by(target)
    assert (source.id if source else None) == by


def test_mute_stage_marks_silenced_inhibited_and_keeps_others():
    red = alert("red", rule="pm25-severe", severity=Severity.RED)
    quiet = alert("q", subject="aq-5", device="aq-5", district="xicheng")
    plain = alert("p", subject="aq-7", device="aq-7", district="haidian")
    fire = lambda a: Transition(a, TransitionKind.FIRING, 5, None, None, notify=True)  # noqa: E731
    silence = Silence("s9", (Matcher(Field.DISTRICT, "xicheng"),), 0, 10, "ops", "works")
    out = mute([fire(alert("o")), fire(quiet), fire(plain)], [red, alert("o"), quiet, plain],
               [silence], InhibitPolicy(), 5, TYPES)  # fmt: skip
    assert [t.suppressed_by for t in out] == ["inhibit:red", "silence:s9", None]
    assert [t.dispatchable for t in out] == [False, False, True]


def test_mute_keeps_flapping_reason_and_ignores_quiet_kinds():
    flapping = Transition(alert(), TransitionKind.FIRING, 5, None, None, True, "flapping")
    pending = Transition(alert(), TransitionKind.PENDING, 5, None, None, False)
    silence = Silence("s", (Matcher(Field.DEVICE, "aq-1"),), 0, 10, "ops", "x")
    out = mute([flapping, pending], [], [silence], InhibitPolicy(), 5, TYPES)
    assert [t.suppressed_by for t in out] == ["flapping", None]


def test_mute_stage_silences_by_device_type_and_severity():
    fire = lambda a: Transition(a, TransitionKind.FIRING, 5, None, None, notify=True)  # noqa: E731
    gas_red = alert("g", subject="gas-1", device="gas-1", severity=Severity.RED)
    matchers = (Matcher(Field.DEVICE_TYPE, "air_quality"),
                Matcher(Field.SEVERITY, "red", Op.NOT_EQUAL))  # fmt: skip
    silence = Silence("s", matchers, 0, 10, "ops", "air sensors recalibrated")
    red = alert("r", severity=Severity.RED)
    out = mute([fire(alert("o")), fire(red), fire(gas_red)], [], [silence], InhibitPolicy(), 5,
               TYPES)  # fmt: skip
    assert [t.suppressed_by for t in out] == ["silence:s", None, None]
