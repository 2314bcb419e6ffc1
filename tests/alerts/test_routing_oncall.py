"""The routing file's people: members, on-call schedules, gateways and policy steps, checked with
the line and column of each problem (what `urbanwatch routing check` prints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.errors import RoutingError, UnknownTeamError
from alerts.routing import load_routing, parse_routing
from alerts.schedules import Weekday

EXAMPLE = Path(__file__).parents[2] / "docs" / "routing-oncall.example.yaml"
TEXT = EXAMPLE.read_text()


def test_the_documented_example_loads_with_its_people():
    routing = load_routing(EXAMPLE)
    _, team = routing.team("gas-emergency")
    lead = team.schedule("lead")
    assert lead is not None and lead.rotation.members == ("li.wei", "wang.fang", "zhao.lei")
    assert lead.rotation.handoff_day is Weekday.monday
    assert str(lead.rotation.handoff_time) == "09:00:00"
    assert [g.id for g in routing.gateways] == ["sms", "voice"]
    assert [s.after_s for s in routing.policy("gas").steps] == [0, 300, 900]


def test_looking_up_a_team_the_file_lacks_says_which():
    with pytest.raises(UnknownTeamError, match="no team 'no-such-team'") as caught:
        load_routing(EXAMPLE).team("no-such-team")
    assert caught.value.team_id == "no-such-team"


def test_files_without_people_keep_loading():
    assert load_routing().gateways == ()
    assert all(p.steps == () for p in load_routing().policies)


def problems(text: str) -> list[str]:
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, "r.yaml")
    return list(caught.value.problems)


def changed(old: str, new: str, count: int = 1) -> str:
    assert old in TEXT
    return TEXT.replace(old, new, count)


@pytest.mark.parametrize(("text", "problem"), [
    (changed("members: [li.wei, wang.fang, zhao.lei]", "members: [li.wei, ghost]"),
     "line 21, column 33, handlers.0.teams.0.oncall.0.rotation.members.1: "
     "team gas-emergency has no member 'ghost'"),
    (changed("{member: zhao.lei,", "{member: nobody,"),
     "line 27, column 26, handlers.0.teams.0.oncall.0.overrides.0.member: "
     "team gas-emergency has no member 'nobody'"),
    (changed("notify: [{channel: email, to: lead}]", "notify: [{channel: email, to: leed}]"),
     "line 69, column 39, policies.0.steps.0.notify.0.to: "
     "team gas-emergency has no on-call schedule 'leed'"),
    (changed("channel: voice", "channel: fax"),
     "line 74, column 22, policies.0.steps.2.notify.0.channel: "
     "unknown channel 'fax'; known: email, sms, voice"),
    (changed(', phone: "+8613800000002"', ""),
     "line 71, column 37, policies.0.steps.1.notify.0.to: sms needs a phone for everyone on "
     "gas-emergency/lead; missing for wang.fang"),
    (changed("to: ecc-duty/chief", "to: ecc-duty/lead"),
     "line 75, column 17, policies.0.steps.2.notify.0.to: "
     "team ecc-duty has no on-call schedule 'lead'"),
    (changed("  - id: voice\n", "  - id: sms\n"),
     "line 55, column 9, gateways.1.id: duplicate gateway id sms"),
], ids=["rotation-member", "override-member", "schedule", "channel", "contact",
        "other-team-schedule", "duplicate-gateway"])
def test_cross_reference_problems_name_their_line(text, problem):
    assert problem in problems(text)


@pytest.mark.parametrize(("old", "new", "problem"), [
    ('phone: "+8613800000001"', "phone: 13800000001",
     "line 15, column 78, handlers.0.teams.0.members.0.phone: Input should be a valid string"),
    ('phone: "+8613800000001"', 'phone: "0138-0000"',
     "line 15, column 78, handlers.0.teams.0.members.0.phone: Value error, '0138-0000' is not "
     "a phone number in E.164 form"),
    ("email: li.wei@gas.example.org", 'email: "li.wei@gas.example.org\\nBcc: x@y.org"',
     "line 15, column 47, handlers.0.teams.0.members.0.email: Value error, "),
    ("handoff_day: monday", "handoff_day: moonday",
     "line 22, column 28, handlers.0.teams.0.oncall.0.rotation.handoff_day: Value error, "
     "unknown weekday 'moonday'"),
    ("length_weeks: 1", "length_weeks: 0",
     "line 24, column 29, handlers.0.teams.0.oncall.0.rotation.length_weeks: Input should be "
     "greater than or equal to 1"),
    ('reference: "{{incident_id}}"', 'reference: "{{incident}}"',
     "line 52, column 7, gateways.0.body: Value error, unknown placeholder(s) incident; known: "),
    ("after_s: 900", "after_s: 200",
     "line 68, column 7, policies.0.steps: Value error, step delays must increase: after_s 200 "
     "follows 300"),
    ("url: https://sms.example.org/v1/messages", "url: http://sms.example.org/v1/messages",
     "line 48, column 5, gateways.0: Value error, gateway URL is plain http://"),
    ("notify: [{channel: email, to: lead}]", "notify: [{channel: email, to: lead, body: {}}]",
     "line 69, column 18, policies.0.steps.0.notify.0: Value error, an e-mail has no body"),
    ("  - id: sms\n", "  - id: sms-gateway-of-the-city-north\n",
     "line 48, column 9, gateways.0.id: Value error, bad gateway id "
     "'sms-gateway-of-the-city-north': it is longer than 24 characters"),
    ("start: 2026-01-05 ", "start: 2026-02-30 ",
     "line 25, column 22: not valid YAML: '2026-02-30' is not a valid date or time"),
], ids=["phone-number", "phone-form", "email-header-injection", "weekday", "rotation-length",
        "placeholder", "step-order", "plain-http", "email-body", "gateway-id-length",
        "start-date"])
def test_field_problems_name_their_line(old, new, problem):
    found = problems(changed(old, new))
    assert any(p.startswith(problem) for p in found), found


def test_an_unquoted_handoff_time_means_the_same():  # YAML 1.1 reads 18:30 as 1110 minutes
    routing = parse_routing(changed('handoff_time: "09:00"', "handoff_time: 18:30"))
    lead = routing.team("gas-emergency")[1].schedule("lead")
    assert lead is not None and str(lead.rotation.handoff_time) == "18:30:00"
