"""Policy steps through `Book.tick`: who is paged when, over which channel, with what text;
acknowledgement stops later steps; gateway bodies stay JSON whatever the incident says."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from email import message_from_string, policy
from pathlib import Path

import pytest

from alerts import templates
from alerts.decisions import escalation, oncall
from alerts.decisions import incidents as machine
from alerts.decisions.book import Book, Decision
from alerts.decisions.page_text import PageContext
from alerts.decisions.planning import OutboxView
from alerts.model import Incident, TimelineKind
from alerts.routing import load_routing
from rules.detection import Category, Detection, DetectionState, Severity

EXAMPLE = Path(__file__).parents[3] / "docs" / "routing-oncall.example.yaml"
T0 = 1_767_661_200_000  # Tuesday 2026-01-06 09:00 in Shanghai: li.wei leads, chen.jun is chief
S = 1000
NOTHING = OutboxView()
WEB = "https://ops.example.org"


def gas_leak(title_device: str = "gas-1") -> Detection:
    return Detection("gas-high", Category.SAFETY, title_device, DetectionState.FIRING,
                     Severity.RED, T0, 80.0, title_device, "ch4", "dongcheng", "dongcheng-g1")


def dispatched() -> tuple[Book, Incident]:
    book = Book(load_routing(EXAMPLE), device_types={"gas-1": "gas"},
                paging=PageContext("Asia/Shanghai", WEB))
    decision = book.apply([gas_leak()], T0, NOTHING)
    [(_, incident)] = decision.incidents
    return decision.book, incident


def pages(decision: Decision) -> list[tuple[str, str]]:
    return [(m.channel, m.target) for mail in decision.mail for m in mail.messages
            if m.event == "page"]


def test_the_docstring_examples_hold():
    for module in (templates, oncall):
        assert doctest.testmod(module).failed == 0


def test_each_step_pages_the_person_on_duty_once_at_its_time():
    book, incident = dispatched()
    first = book.tick(T0 + 1 * S, NOTHING)
    assert pages(first) == [("email", "li.wei@gas.example.org")]
    assert pages(first.book.tick(T0 + 299 * S, NOTHING)) == []
    second = first.book.tick(T0 + 300 * S, NOTHING)
    assert pages(second) == [("gateway.sms", "https://sms.example.org/v1/messages")]
    third = second.book.tick(T0 + 900 * S, NOTHING)
    assert pages(third) == [("gateway.voice", "https://voice.example.org/v1/calls")]
    assert pages(third.book.tick(T0 + 9000 * S, NOTHING)) == []
    paged = [e for e in third.book.incidents.incidents[incident.id].timeline
             if e.kind is TimelineKind.PAGED]
    assert [e.detail for e in paged] == [
        "step 1 (after 0 s): email to lead: Li Wei (li.wei)",
        "step 2 (after 300 s): sms to lead: Li Wei (li.wei)",
        "step 3 (after 900 s): voice to ecc-duty/chief: Chen Jun (chen.jun)",
    ]


def test_after_an_outage_every_missed_step_runs_at_once_in_order():
    book, _ = dispatched()
    late = book.tick(T0 + 3600 * S, NOTHING)
    assert [c for c, _ in pages(late)] == ["email", "gateway.sms", "gateway.voice"]
    assert len({m.key for mail in late.mail for m in mail.messages}) == 3


def test_acknowledging_stops_the_later_steps():
    book, incident = dispatched()
    first = book.tick(T0 + 1 * S, NOTHING)
    stored = first.book.incidents.incidents[incident.id]
    acked = machine.acknowledge(stored, "li.wei", T0 + 60 * S)
    decision = first.book.change_incident(stored, acked, "gas", T0 + 60 * S, NOTHING)
    assert pages(decision.book.tick(T0 + 3600 * S, NOTHING)) == []


def test_steps_done_come_from_the_timeline_so_a_restart_repeats_none():
    book, incident = dispatched()
    ticked = book.tick(T0 + 301 * S, NOTHING).book.incidents.incidents[incident.id]
    assert escalation.steps_done(ticked) == 2
    policy = load_routing(EXAMPLE).policy("gas")
    assert escalation.steps_due(ticked, policy, T0 + 301 * S) == ()
    assert escalation.steps_due(ticked, policy, T0 + 900 * S) == (2,)
    redispatched = machine.dispatch(
        machine.reassign(ticked, "gas-company", "gas-emergency", "op", T0 + 400 * S),
        "gas-company", "gas-emergency", "op", T0 + 400 * S)
    assert escalation.steps_done(redispatched) == 0  # a new dispatch starts the steps again


def test_a_schedule_the_current_team_lacks_is_noted_and_nobody_is_paged():
    book, incident = dispatched()
    moved = replace(incident, team_id="ecc-duty")  # e.g. reassigned by hand
    book = replace(book, incidents=book.incidents.put(moved))
    decision = book.tick(T0 + 1 * S, NOTHING)
    assert pages(decision) == []
    [entry] = [e for e in decision.book.incidents.incidents[incident.id].timeline
               if e.kind is TimelineKind.PAGED]
    assert entry.detail.endswith("email to lead: team ecc-duty has no on-call schedule 'lead'")


def test_the_email_names_severity_category_area_local_time_and_links_the_dashboard():
    book, incident = dispatched()
    [message] = [m for mail in book.tick(T0 + 1 * S, NOTHING).mail for m in mail.messages]
    assert message.content_type == "message/rfc822"
    email = message_from_string(message.body, policy=policy.default)
    assert email["To"] == "Li Wei <li.wei@gas.example.org>" and email["From"] is None
    assert email["Subject"] == f"[RED I] {incident.title}"
    assert email["Message-ID"] == f"<{message.key.replace(':', '.')}@urbanwatch>"
    plain = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for text in (plain, html):
        assert "Category" in text and "safety" in text and "dongcheng" in text
        assert "2026-01-06 09:00 CST" in text
        assert f"{WEB}/#/incident/{incident.id}" in text


@pytest.mark.parametrize("title", [
    'Leak", "to": "+10000000000',
    "Leak}}{{to}} \\ \n\x00",
    "煤气泄漏 — 东城",
], ids=["quote-injection", "braces-backslash-control", "chinese"])
def test_a_gateway_body_stays_one_json_document_whatever_the_title(title):
    book, incident = dispatched()
    renamed = replace(incident, title=title)
    book = replace(book, incidents=book.incidents.put(renamed))
    decision = book.tick(T0 + 300 * S, NOTHING)
    [sms] = [m for mail in decision.mail for m in mail.messages if m.channel == "gateway.sms"]
    body = json.loads(sms.body)
    assert sorted(body) == ["reference", "text", "to"]
    assert body["to"] == "+8613800000001" and body["reference"] == incident.id
    assert body["text"].startswith("[RED I] ") and "\x00" not in body["text"]
    assert sms.secret_env == "URBANWATCH_SMS_GATEWAY_SECRET"


def test_a_step_body_replaces_the_gateways_own():
    book, _ = dispatched()
    decision = book.tick(T0 + 900 * S, NOTHING)
    [voice] = [m for mail in decision.mail for m in mail.messages if m.channel == "gateway.voice"]
    body = json.loads(voice.body)
    assert body["to"] == "+8613900000001" and body["say"].startswith("Gas leak unacknowledged")
