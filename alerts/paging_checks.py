"""Cross-reference checks of the routing file's people: members, on-call schedules, gateways and
the policy steps that page through them, each problem with its location in the file.

A step's schedule must exist for every team that can hold an incident under its policy (the
routes' teams and the escalation levels), and everyone that schedule can put on duty must have
the contact its channel needs (an e-mail address, or a phone number for a gateway).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from alerts.schedules import Member, Schedule
from alerts.steps import EMAIL, Gateway, Page, Step

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


@dataclass(frozen=True)
class TeamPeople:
    """A team's people as the routing file has them, and where the team is in the file."""

    loc: Loc
    members: tuple[Member, ...]
    oncall: tuple[Schedule, ...]

    def schedule(self, schedule_id: str) -> Schedule | None:
        return next((s for s in self.oncall if s.id == schedule_id), None)


@dataclass(frozen=True)
class PolicySteps:
    """A policy's steps, where it is in the file, and the teams that can hold its incidents
    (its routes' teams and its escalation levels)."""

    loc: Loc
    steps: tuple[Step, ...]
    holders: frozenset[str]


def _duplicates(ids: list[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for n, value in enumerate(ids):
        if value in seen:
            yield n, value
        seen.add(value)


def _team_problems(team_id: str, team: TeamPeople) -> Iterator[Problem]:
    at = team.loc
    for n, dup in _duplicates([m.id for m in team.members]):
        yield (*at, "members", n, "id"), f"team {team_id}: duplicate member id {dup}"
    for n, dup in _duplicates([s.id for s in team.oncall]):
        yield (*at, "oncall", n, "id"), f"team {team_id}: duplicate schedule id {dup}"
    members = {m.id for m in team.members}
    for n, schedule in enumerate(team.oncall):
        where = (*at, "oncall", n)
        for k, member in enumerate(schedule.rotation.members):
            if member not in members:
                yield (*where, "rotation", "members", k), f"team {team_id} has no member {member!r}"
        for k, override in enumerate(schedule.overrides):
            if override.member not in members:
                yield (*where, "overrides", k, "member"), (
                    f"team {team_id} has no member {override.member!r}"
                )


def _page_problems(
    teams: Mapping[str, TeamPeople], gateways: Sequence[Gateway], holders: frozenset[str],
    page: Page, at: Loc,
) -> Iterator[Problem]:
    if page.channel != EMAIL and page.channel not in {g.id for g in gateways}:
        known = ", ".join([EMAIL, *(g.id for g in gateways)])
        yield (*at, "channel"), f"unknown channel {page.channel!r}; known: {known}"
        return
    named, schedule_id = page.schedule
    contact = "email" if page.channel == EMAIL else "phone"
    for team_id in sorted({named} if named is not None else holders):
        team = teams.get(team_id)
        if team is None:
            yield (*at, "to"), f"unknown team {team_id!r}"
            continue
        schedule = team.schedule(schedule_id)
        if schedule is None:
            yield (*at, "to"), f"team {team_id} has no on-call schedule {schedule_id!r}"
            continue
        members = {m.id: m for m in team.members}
        lacking = [m for m in dict.fromkeys(schedule.member_ids)
                   if m in members and getattr(members[m], contact) is None]
        if lacking:
            yield (*at, "to"), (
                f"{page.channel} needs a {contact} for everyone on {team_id}/{schedule_id}; "
                f"missing for {', '.join(lacking)}"
            )


def paging_problems(
    teams: Mapping[str, TeamPeople], gateways: Sequence[Gateway], policies: Sequence[PolicySteps]
) -> list[Problem]:
    """Every cross-reference problem of members, schedules, gateways and policy steps."""
    out: list[Problem] = []
    for team_id, team in teams.items():
        out += _team_problems(team_id, team)
    for n, dup in _duplicates([g.id for g in gateways]):
        out.append((("gateways", n, "id"), f"duplicate gateway id {dup}"))
    for policy in policies:
        for k, step in enumerate(policy.steps):
            for m, page in enumerate(step.notify):
                at = (*policy.loc, "steps", k, "notify", m)
                out += _page_problems(teams, gateways, policy.holders, page, at)
    return out
