"""CAP 1.2 rendering validated against the OASIS schema; reports; storm control."""

from __future__ import annotations

from dataclasses import replace
from importlib.resources import files

import pytest
from capvalidator import check_schema
from lxml import etree

from alerts.decisions import incidents as machine
from alerts.decisions.cap import CapContext, cap_time, render_cap, warning_ref
from alerts.decisions.reports import GroupBy, report
from alerts.decisions.storm import StormControl, Verdict
from alerts.model import Incident, IncidentState, Member, TimelineEntry, TimelineKind
from rules.detection import Category, Severity

MIN = 60_000
T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
SCHEMA = etree.XMLSchema(
    etree.parse(str(files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")))
)
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
CTX = CapContext(sender="ops@urbanwatch.example", tz="Asia/Shanghai")


def incident(category=Category.SAFETY, severity=Severity.RED, state=IncidentState.NEW,
             dispatched_ms=None):  # fmt: skip
    members = (
        Member("a1", "gas-high", severity, "gas-1", "dongcheng", "g-1-1"),
        Member("a2", "gas-high", Severity.YELLOW, "gas-2", "dongcheng", "g-1-2"),
    )
    return Incident("in-1", "Safety hazard — dongcheng (2 devices)", category, state, members,
                    T0, T0, T0, dispatched_ms=dispatched_ms)  # fmt: skip


POINTS = [(39.91, 116.40), (39.92, 116.42)]
CAP_CASES = [
    # rendered at T0 + 1 min: the first message of one dispatched then, an update otherwise
    ("red-gas-alert", incident(dispatched_ms=T0 + MIN), {}, "Alert", "Extreme", "Safety",
     "Immediate"),
    ("yellow-flood", incident(Category.FLOOD, Severity.YELLOW, IncidentState.DISPATCHED,
     T0 + MIN), {}, "Alert", "Moderate", "Met",
     "Expected"),
    ("update-with-polygon", incident(Category.ENVIRONMENT, Severity.ORANGE),
     {"polygon": [(39.9, 116.3), (39.9, 116.5), (40.0, 116.5), (39.9, 116.3)]},
     "Update", "Severe", "Env", "Immediate"),
    ("cancel", incident(state=IncidentState.CANCELLED), {}, "Cancel", "Extreme", "Safety",
     "Past"),
    ("resolved-all-clear", incident(Category.FIRE, state=IncidentState.RESOLVED),
     {"expires_ms": T0 + 60 * MIN}, "Update", "Extreme", "Fire", "Past"),
]  # fmt: skip


@pytest.mark.parametrize(("inc", "extra", "msg_type", "severity", "category", "urgency"),
                         [c[1:] for c in CAP_CASES], ids=[c[0] for c in CAP_CASES])  # fmt: skip
def test_cap_validates_against_the_oasis_schema(inc, extra, msg_type, severity, category, urgency):
    xml = render_cap(inc, CTX, T0 + MIN, POINTS, **extra)
    doc = etree.fromstring(xml)
    assert SCHEMA.validate(doc), SCHEMA.error_log
    assert check_schema(xml).passed
    text = lambda path: doc.findtext(path, namespaces=NS)  # noqa: E731
    assert text("cap:msgType") == msg_type
    assert text("cap:info/cap:severity") == severity
    assert text("cap:info/cap:category") == category
    assert text("cap:info/cap:urgency") == urgency
    assert text("cap:sent") == "2024-06-01T08:01:00+08:00"
    assert text("cap:info/cap:area/cap:areaDesc") == "dongcheng"
    lat_lon, radius = text("cap:info/cap:area/cap:circle").split(" ")
    assert lat_lon == "39.91500,116.41000" and float(radius) >= 0.5


def test_one_identifier_per_warning_and_updates_reference_it():
    dispatched = incident(state=IncidentState.DISPATCHED, dispatched_ms=T0 + MIN)
    first = etree.fromstring(render_cap(dispatched, CTX, T0 + MIN, POINTS))
    text = lambda doc, path: doc.findtext(path, namespaces=NS)  # noqa: E731
    assert text(first, "cap:identifier") == "ops@urbanwatch.example.in-1.1717200060000"
    assert text(first, "cap:identifier") == warning_ref(CTX, dispatched).identifier
    assert first.find("cap:references", NS) is None
    reference = "ops@urbanwatch.example,ops@urbanwatch.example.in-1.1717200060000," \
                "2024-06-01T08:01:00+08:00"
    acked = replace(dispatched, state=IncidentState.ACKNOWLEDGED)
    cancelled = replace(dispatched, state=IncidentState.CANCELLED)
    for later, sent_ms, msg_type in ((acked, T0 + 5 * MIN, "Update"),
                                     (cancelled, T0 + 9 * MIN, "Cancel")):  # fmt: skip
        doc = etree.fromstring(render_cap(later, CTX, sent_ms, POINTS))
        assert text(doc, "cap:msgType") == msg_type
        assert text(doc, "cap:identifier") == f"ops@urbanwatch.example.in-1.{sent_ms}"
        assert text(doc, "cap:references") == reference
        assert SCHEMA.validate(doc), SCHEMA.error_log


def test_cap_time_never_uses_z():
    assert cap_time(T0, "UTC") == "2024-06-01T00:00:00-00:00"
    assert cap_time(T0, "America/New_York") == "2024-05-31T20:00:00-04:00"


def test_schema_rejects_a_broken_document():
    xml = render_cap(incident(), CTX, T0, POINTS).replace(b"<status>Actual", b"<status>Real")
    assert not SCHEMA.validate(etree.fromstring(xml))


def test_cap_needs_a_location():
    with pytest.raises(ValueError, match="at least one location"):
        render_cap(incident(), CTX, T0, [])


def timeline(inc, *entries):
    return replace(inc, timeline=tuple(TimelineEntry(t, "u", k) for t, k in entries))


K = TimelineKind
DEADLINE = {Severity.RED: 5 * MIN, Severity.YELLOW: 60 * MIN}.get
FAST = timeline(replace(incident(), team_id="gas-emergency"),
                (T0, K.OPENED), (T0 + MIN, K.DISPATCHED), (T0 + 3 * MIN, K.ACKNOWLEDGED),
                (T0 + 30 * MIN, K.RESOLVED))  # fmt: skip
SLOW = timeline(replace(incident(), id="in-2", team_id="gas-emergency"),
                (T0, K.OPENED), (T0, K.DISPATCHED), (T0 + 5 * MIN, K.ESCALATED),
                (T0 + 7 * MIN, K.ACKNOWLEDGED), (T0 + 90 * MIN, K.RESOLVED))  # fmt: skip
UNACKED = timeline(replace(incident(Category.FLOOD, Severity.YELLOW), id="in-3",
                   team_id="drainage-crew", members=(Member("a", "r", Severity.YELLOW, None,
                   "x", None),)), (T0, K.OPENED), (T0, K.DISPATCHED))  # fmt: skip
LATER = replace(FAST, id="in-4", opened_ms=T0 + 1000 * MIN)


def test_report_by_team():
    rows = report([FAST, SLOW, UNACKED, LATER], T0, T0 + 120 * MIN, GroupBy.TEAM, DEADLINE)
    gas, drain = rows[1], rows[0]
    assert (gas.key, gas.incidents, gas.acknowledged, gas.resolved) == ("gas-emergency", 2, 2, 2)
    assert gas.mtta_ms == 5 * MIN and gas.mttr_ms == 60 * MIN
    assert (gas.sla_breaches, gas.escalations) == (1, 1)
    assert (drain.key, drain.mtta_ms, drain.sla_breaches) == ("drainage-crew", None, 1)


@pytest.mark.parametrize(
    ("by", "keys"),
    [(GroupBy.CATEGORY, ["flood", "safety"]), (GroupBy.SEVERITY, ["red", "yellow"])],
    ids=["category", "severity"],
)
def test_report_groupings(by, keys):
    rows = report([FAST, SLOW, UNACKED], T0, T0 + 120 * MIN, by, DEADLINE)
    assert [r.key for r in rows] == keys


def test_report_reads_only_entries_before_the_end():
    (row,) = report([SLOW], T0, T0 + 6 * MIN, GroupBy.TEAM, DEADLINE)
    assert (row.acknowledged, row.resolved, row.escalations, row.sla_breaches) == (0, 0, 1, 1)


def test_report_from_the_state_machine_timeline():
    inc = machine.dispatch(replace(incident(), timeline=()), "gas", "gas-emergency", "r", T0)
    inc = machine.resolve(machine.acknowledge(inc, "li", T0 + 2 * MIN), "li", T0 + 9 * MIN)
    (row,) = report([inc], T0, T0 + 60 * MIN, GroupBy.TEAM, DEADLINE)
    assert (row.mtta_ms, row.mttr_ms, row.sla_breaches) == (2 * MIN, 9 * MIN, 0)


S, F = Verdict.SEND, Verdict.FOLD
STORM = StormControl(max_per_window=3, window_ms=MIN)
STORM_CASES = [
    ("room-for-all", [], 3, [S, S, S]),
    ("fold-beyond-limit", [], 5, [S, S, S, F, F]),
    ("recent-sends-count", [T0 - 10, T0 - 20], 2, [S, F]),
    ("old-sends-expire", [T0 - MIN, T0 - MIN - 1], 3, [S, S, S]),
    ("full-window-folds-all", [T0, T0 - 1, T0 - 2], 2, [F, F]),
]


@pytest.mark.parametrize(("sent", "count", "decisions"), [c[1:] for c in STORM_CASES],
                         ids=[c[0] for c in STORM_CASES])  # fmt: skip
def test_storm_control(sent, count, decisions):
    assert list(STORM.decide(sent, count, T0)) == decisions


def test_digest_waits_for_room():
    sent = [T0 - 30_000, T0 - 20_000, T0 - 10_000]
    assert not STORM.digest_due(sent, 4, T0)
    assert STORM.next_room_ms(sent, T0) == T0 + 30_000
    assert STORM.digest_due(sent, 4, T0 + 30_000)
    assert not STORM.digest_due(sent, 0, T0 + 30_000)
