"""Policy steps through `AlertService` over a real database (SQLite and PostgreSQL): pages are
outbox rows like any notification, and a new service over the same database (a restart) runs
no step twice."""

from __future__ import annotations

import json
from pathlib import Path

from alerts.decisions.notify import Message
from alerts.decisions.page_text import PageContext
from alerts.model import TimelineKind
from alerts.routing import load_routing
from alerts.service import AlertService
from alerts.sql import outbox
from rules.detection import Category, Detection, DetectionState, Severity

EXAMPLE = Path(__file__).parents[3] / "docs" / "routing-oncall.example.yaml"
T0 = 1_767_661_200_000  # Tuesday 2026-01-06 09:00 in Shanghai
S = 1000


def service(sessions) -> AlertService:
    return AlertService(sessions, load_routing(EXAMPLE), device_types={"gas-1": "gas"},
                        paging=PageContext("Asia/Shanghai", "https://ops.example.org"))


async def test_pages_are_outbox_rows_and_a_restart_repeats_no_step(sessions):
    first = service(sessions)
    await first.handle([Detection("gas-high", Category.SAFETY, "gas-1", DetectionState.FIRING,
                                  Severity.RED, T0, 80.0, "gas-1", "ch4", "dongcheng",
                                  "dongcheng-g1")], T0)
    await first.tick(T0 + 1 * S)
    await first.tick(T0 + 300 * S)
    restarted = service(sessions)
    await restarted.tick(T0 + 301 * S)  # nothing new is due: steps 1 and 2 ran before
    await restarted.tick(T0 + 900 * S)
    async with sessions() as session:
        pages = await outbox.rows(session, event="page")
    assert [(r.channel, r.target, r.status) for r in pages] == [
        ("email", "li.wei@gas.example.org", "pending"),
        ("gateway.sms", "https://sms.example.org/v1/messages", "pending"),
        ("gateway.voice", "https://voice.example.org/v1/calls", "pending"),
    ]
    assert pages[0].content_type == "message/rfc822" and pages[1].secret_env is not None
    assert json.loads(pages[2].body)["to"] == "+8613900000001"
    [incident] = await restarted.incidents()
    assert sum(e.kind is TimelineKind.PAGED for e in incident.timeline) == 3


async def test_pages_do_not_use_up_the_teams_storm_budget(sessions):
    """Storm control counts a team's notices to fold the excess into digests; pages are never
    folded, so they are not counted either."""
    notice = Message("in-1:opened", "mqtt", "dispatch/gas", "application/json", "{}",
                     "gas-emergency", "opened", incident_id="in-1")
    page = Message("in-1:page:0:li.wei", "email", "li.wei@gas.example.org", "text/plain", "hi",
                   "gas-emergency", "page", incident_id="in-1")
    async with sessions.begin() as session:
        await outbox.enqueue(session, [notice, page], T0, outbox.Status.PENDING)
    async with sessions() as session:
        view = await outbox.view(session, T0 - 60 * S, folded=False)
    assert list(view.sent["gas-emergency"]) == ["in-1:opened"]
