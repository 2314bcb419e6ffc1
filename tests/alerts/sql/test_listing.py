"""`repository.find_incidents`, `find_alerts` and `find_alert`: filters, team visibility and
paging done in SQL, on SQLite and PostgreSQL, checked against a handful of stored incidents and
alerts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.model import (
    Alert,
    AlertChange,
    AlertState,
    Incident,
    IncidentState,
    Member,
    TimelineEntry,
    TimelineKind,
)
from alerts.sql import repository as repo
from alerts.sql.repository import AlertQuery, AlertWithIncident, IncidentQuery
from rules.detection import Category, Severity
from tests.alerts.conftest import MIN, T0

GAS, DRAINAGE = "gas-emergency", "drainage-crew"
S = IncidentState


def incident(
    incident_id: str,
    category: Category,
    state: IncidentState,
    opened_ms: int,
    team_id: str | None,
    *members: tuple[Severity, str | None, bool],
) -> Incident:
    """An incident whose members have (severity, district, cleared)."""
    held = tuple(
        Member(f"{incident_id}-al{n}", "rule", severity, f"dev-{n}", district, None, cleared)
        for n, (severity, district, cleared) in enumerate(members)
    )
    opened = TimelineEntry(opened_ms, "system", TimelineKind.OPENED, held[0].alert_id)
    return Incident(incident_id, incident_id, category, state, held, opened_ms, opened_ms,
                    opened_ms, team_id and "handler", team_id, timeline=(opened,))  # fmt: skip


STORED = [
    incident("in-a", Category.SAFETY, S.DISPATCHED, T0, GAS,
             (Severity.RED, "dongcheng", False), (Severity.YELLOW, "xicheng", False)),
    incident("in-b", Category.FLOOD, S.NEW, T0 + MIN, DRAINAGE,
             (Severity.YELLOW, "xicheng", False)),
    incident("in-c", Category.SAFETY, S.CLOSED, T0 + 2 * MIN, GAS,
             (Severity.ORANGE, "dongcheng", True)),
    incident("in-d", Category.DEVICE, S.NEW, T0 + 3 * MIN, None, (Severity.BLUE, None, False)),
    incident("in-e", Category.FLOOD, S.ACKNOWLEDGED, T0 + 3 * MIN, DRAINAGE,
             (Severity.YELLOW, "chaoyang", False), (Severity.RED, "chaoyang", True)),
]  # fmt: skip
"""Newest first: in-e, in-d (same opened_ms, the larger id first), in-c, in-b, in-a."""



def alert(
    alert_id: str,
    state: AlertState,
    severity: Severity,
    started_ms: int,
    district: str | None,
    rule_id: str = "gas-high",
    category: Category = Category.SAFETY,
) -> Alert:
    first = AlertChange(started_ms, None, AlertState.FIRING, severity)
    return Alert(alert_id, rule_id, alert_id, category, severity, state, started_ms, started_ms,
                 1.0, device_id=f"dev-{alert_id}", district=district, history=(first,))  # fmt: skip


ALERTS = [  # the ids of STORED's members, and one alert in no incident
    alert("in-a-al0", AlertState.FIRING, Severity.RED, T0, "dongcheng"),
    alert("in-a-al1", AlertState.ACKNOWLEDGED, Severity.YELLOW, T0 + MIN, "xicheng"),
    alert("in-b-al0", AlertState.FIRING, Severity.YELLOW, T0 + MIN, "xicheng", "water-rise",
          Category.FLOOD),
    alert("in-d-al0", AlertState.CLEARED, Severity.BLUE, T0 + 2 * MIN, None, "offline",
          Category.DEVICE),
    alert("lone", AlertState.CLOSED, Severity.RED, T0 + 3 * MIN, "dongcheng"),
]  # fmt: skip
"""Newest first: lone, in-d-al0, in-a-al1, in-b-al0 (same started_ms, the smaller id first),
in-a-al0."""


@pytest.fixture
async def stored(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    async with sessions.begin() as session:
        await repo.save_incidents(session, [(None, i) for i in STORED], {})
        await repo.save_alerts(session, [(None, a) for a in ALERTS])
    return sessions


async def find(sessions: async_sessionmaker[AsyncSession], query: IncidentQuery
               ) -> tuple[list[str], int]:  # fmt: skip
    async with sessions() as session:
        page, total = await repo.find_incidents(session, query)
    return [i.id for i in page], total


CASES = [
    (IncidentQuery(), ["in-e", "in-d", "in-c", "in-b", "in-a"]),
    (IncidentQuery(states=frozenset({S.NEW})), ["in-d", "in-b"]),
    (IncidentQuery(severity=Severity.RED), ["in-e", "in-a"]),  # a cleared member's counts too
    (IncidentQuery(severity=Severity.INFO), []),
    (IncidentQuery(category=Category.FLOOD, severity=Severity.YELLOW), ["in-b"]),
    (IncidentQuery(district="dongcheng"), ["in-c", "in-a"]),
    (IncidentQuery(district="xicheng"), ["in-b", "in-a"]),  # in-a's second member's district
    (IncidentQuery(district="xicheng", category=Category.SAFETY,
                   states=frozenset({S.DISPATCHED})), ["in-a"]),
    (IncidentQuery(district="dong"), []),  # whole names only
    (IncidentQuery(district="dong\x00cheng"), []),  # PostgreSQL refuses NUL in text
    (IncidentQuery(team_id=GAS), ["in-c", "in-a"]),
    (IncidentQuery(opened_from_ms=T0 + MIN, opened_to_ms=T0 + 3 * MIN), ["in-c", "in-b"]),
    (IncidentQuery(opened_from_ms=T0 + 3 * MIN, district="chaoyang"), ["in-e"]),
    (IncidentQuery(visible_teams=frozenset({DRAINAGE})), ["in-e", "in-b"]),
    (IncidentQuery(visible_teams=frozenset({GAS, DRAINAGE}), states=frozenset({S.NEW})), ["in-b"]),
    (IncidentQuery(states=frozenset({S.NEW, S.ACKNOWLEDGED, S.DISPATCHED})),
     ["in-e", "in-d", "in-b", "in-a"]),
    (IncidentQuery(visible_teams=frozenset({DRAINAGE}), team_id=GAS), []),  # not theirs
    (IncidentQuery(visible_teams=frozenset({"tree-crew"})), []),  # no team: only for all
    (IncidentQuery(visible_teams=frozenset()), []),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    CASES,
    ids=["all", "state", "severity", "no-severity", "category+severity", "district",
         "second-member-district", "district+category+state", "partial-district",
         "nul-district", "team", "opened-range", "opened+district", "visible-team",
         "visible-teams+state", "states", "other-team-filter", "unrelated-team", "no-teams"],
)  # fmt: skip
async def test_filters_match_like_the_incidents_would(
    stored: async_sessionmaker[AsyncSession], query: IncidentQuery, expected: list[str]
) -> None:
    assert await find(stored, query) == (expected, len(expected))


async def test_a_page_counts_every_match(stored: async_sessionmaker[AsyncSession]) -> None:
    assert await find(stored, IncidentQuery(limit=2)) == (["in-e", "in-d"], 5)
    assert await find(stored, IncidentQuery(limit=2, offset=2)) == (["in-c", "in-b"], 5)
    assert await find(stored, IncidentQuery(limit=2, offset=4)) == (["in-a"], 5)
    assert await find(stored, IncidentQuery(limit=2, offset=5)) == ([], 5)
    assert await find(stored, IncidentQuery(limit=10, offset=100)) == ([], 5)
    gas = IncidentQuery(visible_teams=frozenset({GAS}), district="dongcheng", limit=1, offset=1)
    assert await find(stored, gas) == (["in-a"], 2)


async def test_keyset_pages_walk_the_order_past_ties(
    stored: async_sessionmaker[AsyncSession],
) -> None:
    """Each page starts after the (opened_ms, id) of the previous page's last incident; the
    total still counts every match."""
    walked, after = [], None
    while True:
        async with stored() as session:
            page, total = await repo.find_incidents(session, IncidentQuery(limit=2, after=after))
        assert total == 5
        if not page:
            break
        walked += [i.id for i in page]
        after = (page[-1].opened_ms, page[-1].id)
    assert walked == ["in-e", "in-d", "in-c", "in-b", "in-a"]
    assert await find(stored, IncidentQuery(after=(T0 + 3 * MIN, "in-e"))) == (
        ["in-d", "in-c", "in-b", "in-a"], 5)  # in-d ties with in-e on opened_ms


async def test_open_incidents_are_counted_by_severity(
    stored: async_sessionmaker[AsyncSession],
) -> None:
    async with stored() as session:  # in-c is closed; in-e is red by its cleared member
        assert await repo.count_open_incidents(session) == {
            Severity.RED: 2, Severity.YELLOW: 1, Severity.BLUE: 1}


async def test_found_incidents_are_whole(stored: async_sessionmaker[AsyncSession]) -> None:
    async with stored() as session:
        page, _ = await repo.find_incidents(session, IncidentQuery(team_id=GAS))
    assert page == [STORED[2], STORED[0]]  # with members and timeline


async def find_alerts(sessions: async_sessionmaker[AsyncSession], query: AlertQuery
                      ) -> tuple[list[str], int]:  # fmt: skip
    async with sessions() as session:
        page, total = await repo.find_alerts(session, query)
    return [a.id for a in page], total


ALERT_CASES = [
    (AlertQuery(), ["lone", "in-d-al0", "in-a-al1", "in-b-al0", "in-a-al0"]),
    (AlertQuery(states=frozenset({AlertState.FIRING, AlertState.CLOSED})),
     ["lone", "in-b-al0", "in-a-al0"]),
    (AlertQuery(severities=frozenset({Severity.RED}), district="dongcheng"), ["lone", "in-a-al0"]),
    (AlertQuery(category=Category.FLOOD, rule_id="water-rise"), ["in-b-al0"]),
    (AlertQuery(device_id="dev-in-a-al1"), ["in-a-al1"]),
    (AlertQuery(rule_id="gas\x00high"), []),  # PostgreSQL refuses NUL in text
    (AlertQuery(started_from_ms=T0 + MIN, started_to_ms=T0 + 2 * MIN), ["in-a-al1", "in-b-al0"]),
    (AlertQuery(visible_teams=frozenset({GAS})), ["in-a-al1", "in-a-al0"]),
    (AlertQuery(visible_teams=frozenset({GAS, DRAINAGE}), district="xicheng"),
     ["in-a-al1", "in-b-al0"]),
    (AlertQuery(visible_teams=frozenset({DRAINAGE}), category=Category.SAFETY), []),
    (AlertQuery(visible_teams=frozenset({"tree-crew"})), []),  # no incident, no team: hidden
    (AlertQuery(visible_teams=frozenset()), []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    ALERT_CASES,
    ids=["all", "states", "severity+district", "category+rule", "device", "nul-rule",
         "started-range", "visible-team", "visible-teams+district", "other-team-category",
         "unrelated-team", "no-teams"],
)  # fmt: skip
async def test_alert_filters(
    stored: async_sessionmaker[AsyncSession], query: AlertQuery, expected: list[str]
) -> None:
    assert await find_alerts(stored, query) == (expected, len(expected))


async def test_an_alert_page_counts_every_match(stored: async_sessionmaker[AsyncSession]) -> None:
    assert await find_alerts(stored, AlertQuery(limit=3, offset=3)) == (
        ["in-b-al0", "in-a-al0"], 5)
    assert await find_alerts(stored, AlertQuery(limit=3, offset=5)) == ([], 5)
    gas = AlertQuery(visible_teams=frozenset({GAS}), limit=1, offset=1)
    assert await find_alerts(stored, gas) == (["in-a-al0"], 2)
    async with stored() as session:
        [found], _ = await repo.find_alerts(session, AlertQuery(device_id="dev-in-a-al0"))
    assert found == ALERTS[0]  # with its history


async def find_one(sessions: async_sessionmaker[AsyncSession], alert_id: str,
                   teams: frozenset[str] | None) -> tuple[str, str | None] | None:  # fmt: skip
    async with sessions() as session:
        found = await repo.find_alert(session, alert_id, teams)
    return None if found is None else (found.alert.id, found.incident_id)


ONE_CASES = [
    ("in-a-al1", None, ("in-a-al1", "in-a")),
    ("lone", None, ("lone", None)),
    ("in-d-al0", None, ("in-d-al0", "in-d")),
    ("al-nope", None, None),
    ("in-a\x00al1", None, None),  # PostgreSQL refuses NUL in text
    ("in-a-al0", frozenset({GAS}), ("in-a-al0", "in-a")),
    ("in-a-al0", frozenset({GAS, DRAINAGE}), ("in-a-al0", "in-a")),
    ("in-a-al0", frozenset({DRAINAGE}), None),  # another team's incident holds it
    ("lone", frozenset({GAS}), None),  # in no incident
    ("in-d-al0", frozenset({GAS}), None),  # its incident has no team
    ("in-a-al0", frozenset(), None),
    ("al-nope", frozenset({GAS}), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("alert_id", "teams", "expected"),
    ONE_CASES,
    ids=["in-incident", "in-no-incident", "incident-without-team", "unknown", "nul-id",
         "own-team", "own-teams", "other-team", "no-incident-for-responder",
         "no-team-for-responder", "no-teams", "unknown-for-responder"],
)  # fmt: skip
async def test_one_alert_with_its_incident(
    stored: async_sessionmaker[AsyncSession],
    alert_id: str,
    teams: frozenset[str] | None,
    expected: tuple[str, str | None] | None,
) -> None:
    assert await find_one(stored, alert_id, teams) == expected


async def test_one_alert_is_whole(stored: async_sessionmaker[AsyncSession]) -> None:
    async with stored() as session:
        found = await repo.find_alert(session, "in-a-al1")
    assert found == AlertWithIncident(ALERTS[1], "in-a")  # with its history


async def test_an_alert_in_two_incidents_shows_the_newest_the_caller_sees(
    stored: async_sessionmaker[AsyncSession],
) -> None:
    """An alert is held by a second incident when its first ended while it still fired; the
    newest one the caller sees is given (and its listing agrees)."""
    again = incident("in-f", Category.FLOOD, S.NEW, T0 + 4 * MIN, GAS,
                     (Severity.YELLOW, "xicheng", False))  # fmt: skip
    held_again = replace(again, members=(replace(again.members[0], alert_id="in-b-al0"),))
    async with stored.begin() as session:
        await repo.save_incidents(session, [(None, held_again)], {})
    assert await find_one(stored, "in-b-al0", None) == ("in-b-al0", "in-f")
    assert await find_one(stored, "in-b-al0", frozenset({GAS})) == ("in-b-al0", "in-f")
    assert await find_one(stored, "in-b-al0", frozenset({DRAINAGE})) == ("in-b-al0", "in-b")
    assert await find_one(stored, "in-b-al0", frozenset({"tree-crew"})) is None
    assert await find_alerts(stored, AlertQuery(visible_teams=frozenset({GAS}))) == (
        ["in-a-al1", "in-b-al0", "in-a-al0"], 3)


async def test_alert_keyset_pages_walk_the_order_past_ties(
    stored: async_sessionmaker[AsyncSession],
) -> None:
    walked, after = [], None
    while True:
        async with stored() as session:
            page, total = await repo.find_alerts(session, AlertQuery(limit=2, after=after))
        assert total == 5
        if not page:
            break
        walked += [a.id for a in page]
        after = (page[-1].started_ms, page[-1].id)
    assert walked == ["lone", "in-d-al0", "in-a-al1", "in-b-al0", "in-a-al0"]
    assert await find_alerts(stored, AlertQuery(after=(T0 + MIN, "in-a-al1"))) == (
        ["in-b-al0", "in-a-al0"], 5)  # in-b-al0 ties with in-a-al1 on started_ms
