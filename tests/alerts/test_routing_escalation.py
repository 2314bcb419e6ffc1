"""The routing file (first match, catch-all, validation) and escalation timing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from pydantic import ValidationError

from alerts.decisions import incidents as machine
from alerts.decisions.escalation import Action, due
from alerts.errors import RoutingError
from alerts.model import Incident, IncidentState, Member
from alerts.routing import MqttTarget, RoutingConfig, load_routing, parse_routing
from rules.detection import Category, Severity

MIN = 60_000
ROUTING = load_routing()

ROUTE_CASES = [
    ("gas-red", ("safety", "dongcheng", Severity.RED, ["gas"]), "gas-emergency"),
    ("smoke", ("fire", "haidian", Severity.ORANGE, ["smoke"]), "fire-station"),
    ("fire-area-rule", ("fire", "haidian", Severity.RED, []), "fire-station"),
    ("gas-leak-then-fire", ("fire", "x", Severity.RED, ["gas", "smoke"]), "fire-station"),
    ("flood", ("flood", "xicheng", Severity.YELLOW, ["water_level"]), "drainage-crew"),
    ("pollution-orange", ("environment", "x", Severity.ORANGE, ["air_quality"]),
     "env-enforcement"),
    ("pollution-yellow-falls-through", ("environment", "x", Severity.YELLOW, []),
     "env-monitoring"),
    ("traffic", ("traffic", None, Severity.BLUE, ["traffic_flow"]), "traffic-control"),
    ("device-fault", ("device", "x", Severity.YELLOW, ["noise"]), "field-maintenance"),
    ("unmatched-safety-catch-all", ("safety", "x", Severity.RED, ["structural"]), "ecc-duty"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "team"), [c[1:] for c in ROUTE_CASES],
                         ids=[c[0] for c in ROUTE_CASES])  # fmt: skip
def test_default_routing_first_match(query, team):
    assert ROUTING.route(*query).team == team


def test_default_handlers_cover_the_city_departments():
    assert {h.id for h in ROUTING.handlers} >= {
        "environment-bureau", "traffic-police", "water-authority", "gas-company",
        "fire-rescue", "city-management", "emergency-command"}  # fmt: skip
    handler, team = ROUTING.team("ecc-duty")
    assert handler.id == "emergency-command" and team.channels[0].type == "mqtt"


BASE = """
version: 1
handlers:
  - {id: gas, name: Gas, teams: [{id: gas-team, name: G}]}
  - {id: ecc, name: ECC, teams: [{id: ecc-duty, name: D,
     channels: [{type: webhook, url: "https://ecc.example/hook", secret_env: ECC_SECRET}]}]}
policies:
  - {id: p, ack_deadline_s: {red: 300}, levels: [ecc-duty]}
routes:
  - {match: {categories: [safety], districts: [dongcheng], min_severity: orange},
     handler: gas, team: gas-team, policy: p}
  - {handler: ecc, team: ecc-duty, policy: p}
"""


def test_district_and_severity_matching():
    config = parse_routing(BASE)
    assert config.route("safety", "dongcheng", Severity.RED).team == "gas-team"
    assert config.route("safety", "dongcheng", Severity.YELLOW).team == "ecc-duty"
    assert config.route("safety", "xicheng", Severity.RED).team == "ecc-duty"
    assert config.team("ecc-duty")[1].channels[0].secret_env == "ECC_SECRET"


def with_topic(topic: str) -> str:
    """BASE with the gas team's MQTT channel on `topic`."""
    return BASE.replace("name: G}", "name: G, channels: [{type: mqtt, topic: '" + topic + "'}]}")


BAD = [
    ("not-yaml", "version: [1", "not valid YAML"),
    ("no-catch-all", BASE.replace("  - {handler: ecc, team: ecc-duty, policy: p}\n", ""),
     "last route must be a catch-all"),
    ("unknown-team", BASE.replace("team: gas-team, policy", "team: nobody, policy"),
     "has no team 'nobody'"),
    ("unknown-policy", BASE.replace("team: ecc-duty, policy: p}", "team: ecc-duty, policy: q}"),
     "unknown policy 'q'"),
    ("unknown-category", BASE.replace("[safety]", "[gasleak]"), "unknown category 'gasleak'"),
    ("bad-severity", BASE.replace("{red: 300}", "{purple: 300}"), "unknown severity 'purple'"),
    ("bad-url", BASE.replace("https://ecc.example/hook", "ftp://x"), "url"),
    ("plain-http", BASE.replace("https://ecc.example/hook", "http://ecc.example/hook"),
     "plain http://.*allow_http: true"),
    ("unknown-field", BASE.replace("version: 1", "version: 1\nextra: 2"), "extra"),
    ("escalation-to-unknown-team", BASE.replace("levels: [ecc-duty]", "levels: [ghost]"),
     "unknown escalation team 'ghost'"),
    ("duplicate-team", BASE.replace("id: gas-team", "id: ecc-duty"), "duplicate team ids"),
    *[(f"topic-{name}", with_topic(t), "must be dispatch/<level>") for name, t in [
        ("outside-dispatch", "city/d1/x/data"), ("plus-wildcard", "dispatch/+"),
        ("hash-wildcard", "dispatch/gas/#"), ("bare-dispatch", "dispatch/"),
        ("empty-level", "dispatch//gas"), ("space", "dispatch/gas team"),
        ("backslash", "dispatch/gas\\nuser")]],
]  # fmt: skip


def test_plain_http_is_taken_when_its_channel_allows_it():
    allowed = BASE.replace("url: \"https://ecc.example/hook\"",
                           "url: \"http://ecc.example/hook\", allow_http: true")
    [channel] = parse_routing(allowed).team("ecc-duty")[1].channels
    assert channel.url == "http://ecc.example/hook" and channel.allow_http


def test_a_topic_with_a_newline_is_refused():  # it would reach the broker's ACL file
    with pytest.raises(ValidationError, match="must be dispatch/<level>"):
        MqttTarget(type="mqtt", topic="dispatch/gas\ntopic readwrite #")


def test_a_dispatch_topic_is_taken_and_a_bad_one_refused_with_its_line():
    good = with_topic("dispatch/gas/main")
    assert parse_routing(good).team("gas-team")[1].channels[0].topic == "dispatch/gas/main"
    bad = with_topic("dispatch/#")
    with pytest.raises(RoutingError) as info:
        parse_routing(bad, "test.yaml")
    assert info.value.problems[0].startswith(
        "line 4, column 89, handlers.0.teams.0.channels.0.mqtt.topic: "
        "Value error, topic 'dispatch/#' must be"
    ), info.value.problems


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_routing_validation_errors(text, message):
    with pytest.raises(RoutingError, match=message) as info:
        parse_routing(text, "test.yaml")
    assert info.value.source == "test.yaml" and info.value.problems


LINE_CASES = [
    ("not-yaml", "version: 1\nhandlers: [\n", "line 3, column 1: not valid YAML"),
    ("unknown-team", BASE.replace("team: gas-team, policy", "team: nobody, policy"),
     "line 11, column 26, routes.0.team: route 0: handler 'gas' has no team 'nobody'"),
    ("bad-url", BASE.replace("https://ecc.example/hook", "ftp://x"),
     "line 6, column 38, handlers.1.teams.0.channels.0.webhook.url: String should match pattern"),
    ("escalation-to-unknown-team", BASE.replace("levels: [ecc-duty]", "levels: [ghost]"),
     "line 8, column 50, policies.0.levels.0: policy p: unknown escalation team 'ghost'"),
    ("no-catch-all", BASE.replace("  - {handler: ecc, team: ecc-duty, policy: p}\n", ""),
     "line 10, column 5, routes.0: the last route must be a catch-all"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), [c[1:] for c in LINE_CASES],
                         ids=[c[0] for c in LINE_CASES])  # fmt: skip
def test_routing_problems_name_their_line(text, problem):
    with pytest.raises(RoutingError) as info:
        parse_routing(text, "test.yaml")
    assert info.value.problems[0].startswith(problem), info.value.problems


def test_a_routing_config_built_directly_is_still_checked():
    raw = yaml.safe_load(BASE.replace("levels: [ecc-duty]", "levels: [ghost]"))
    with pytest.raises(ValueError, match=r"policies\.0\.levels\.0: policy p: unknown escalation"):
        RoutingConfig.model_validate(raw)


POLICY = ROUTING.policy("flood")  # red: 5 min, repeat 2 min, levels flood-control, ecc-duty


def dispatched(severity=Severity.RED, at_ms=0):
    incident = Incident("in-1", "t", Category.FLOOD, IncidentState.NEW,
                        (Member("a1", "r", severity, "d", "x", None),), 0, 0, 0)  # fmt: skip
    return machine.dispatch(incident, "water-authority", "drainage-crew", "router", at_ms)


ESC_CASES = [
    ("before-repeat", dispatched(), 2 * MIN - 1, Action.NONE, 0, None),
    ("repeat-due", dispatched(), 2 * MIN, Action.REPEAT, 0, None),
    ("deadline-missed", dispatched(), 5 * MIN, Action.ESCALATE, 1, "flood-control"),
    ("orange-deadline-later", dispatched(Severity.ORANGE), 4 * MIN, Action.NONE, 0, None),
    ("orange-deadline", dispatched(Severity.ORANGE), 15 * MIN, Action.ESCALATE, 1,
     "flood-control"),
    ("acknowledged-stops", machine.acknowledge(dispatched(), "u", MIN), 60 * MIN,
     Action.NONE, 0, None),
    ("level-2-from-escalated-time", replace(dispatched(), escalation_level=1,
     escalated_ms=5 * MIN, last_notified_ms=5 * MIN), 10 * MIN, Action.ESCALATE, 2, "ecc-duty"),
    ("level-2-not-yet", replace(dispatched(), escalation_level=1, escalated_ms=5 * MIN,
     last_notified_ms=9 * MIN), 10 * MIN - 1, Action.NONE, 1, None),
    ("last-level-only-repeats", replace(dispatched(), escalation_level=2, escalated_ms=0),
     60 * MIN, Action.REPEAT, 2, None),
    ("new-is-not-timed", dispatched().__class__(**{**dispatched().__dict__,
     "state": IncidentState.NEW}), 60 * MIN, Action.NONE, 0, None),
]  # fmt: skip


@pytest.mark.parametrize(("incident", "now_ms", "action", "level", "team"),
                         [c[1:] for c in ESC_CASES], ids=[c[0] for c in ESC_CASES])  # fmt: skip
def test_escalation_due(incident, now_ms, action, level, team):
    result = due(incident, POLICY, now_ms)
    assert (result.action, result.level, result.team_id) == (action, level, team)


def test_escalation_is_restart_safe_and_advances():
    incident = dispatched()
    first = due(incident, POLICY, 6 * MIN)
    # a "restart": the same stored incident gives the same answer
    assert due(Incident(**incident.__dict__), POLICY, 6 * MIN) == first
    handler, _ = ROUTING.team(first.team_id)
    incident = machine.escalate(incident, first.level, handler.id, first.team_id, "esc", 6 * MIN)
    assert due(incident, POLICY, 6 * MIN).action is Action.NONE
    assert due(incident, POLICY, 6 * MIN).next_check_ms == 8 * MIN  # repeat before deadline
    assert due(incident, POLICY, 11 * MIN).team_id == "ecc-duty"


def test_next_check_is_the_deadline_when_no_repeat():
    policy = ROUTING.policy("maintenance")  # red 3600 s, no repeat, no levels
    result = due(dispatched(), policy, 0)
    assert (result.action, result.next_check_ms) == (Action.NONE, None)


def test_a_routing_file_with_an_alias_is_refused_with_its_line() -> None:
    with pytest.raises(RoutingError, match=r"line 2, column 4: not valid YAML.*aliases"):
        parse_routing("x: &h {a: 1}\ny: *h\n")
