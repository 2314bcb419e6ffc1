"""Cross-reference checks of the routing file's people: members, on-call schedules, gateways and
the policy steps that page through them, each problem with its location in the file.

A step's schedule must exist for every team that can hold an incident under its policy (the
routes' teams and the escalation levels), and everyone that schedule can put on duty must have
the contact its channel needs (an e-mail address, or a phone number for a gateway).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from alerts.steps import EMAIL, Page

if TYPE_CHECKING:
    from alerts.routing import Policy, RoutingConfig, Team

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def _duplicates(ids: list[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for n, value in enumerate(ids):
        if value in seen:
            yield n, value
        seen.add(value)


def _team_problems(team: Team, at: Loc) -> Iterator[Problem]:
    for n, dup in _duplicates([m.id for m in team.members]):
        yield (*at, "members", n, "id"), f"team {team.id}: duplicate member id {dup}"
    for n, dup in _duplicates([s.id for s in team.oncall]):
        yield (*at, "oncall", n, "id"), f"team {team.id}: duplicate schedule id {dup}"
    members = {m.id for m in team.members}
    for n, schedule in enumerate(team.oncall):
        where = (*at, "oncall", n)
        for k, member in enumerate(schedule.rotation.members):
            if member not in members:
                yield (*where, "rotation", "members", k), f"team {team.id} has no member {member!r}"
        for k, override in enumerate(schedule.overrides):
            if override.member not in members:
                yield (*where, "overrides", k, "member"), (
                    f"team {team.id} has no member {override.member!r}"
                )


def holders(config: RoutingConfig, policy: Policy) -> set[str]:
    """The teams that can hold an incident under `policy`: its routes' teams and its levels."""
    return {r.team for r in config.routes if r.policy == policy.id} | set(policy.levels)


def _page_problems(config: RoutingConfig, policy: Policy, page: Page, at: Loc) -> Iterator[Problem]:
    if page.channel != EMAIL and config.gateway(page.channel) is None:
        known = ", ".join([EMAIL, *(g.id for g in config.gateways)])
        yield (*at, "channel"), f"unknown channel {page.channel!r}; known: {known}"
        return
    named, schedule_id = page.schedule
    teams = {named} if named is not None else holders(config, policy)
    contact = "email" if page.channel == EMAIL else "phone"
    for team_id in sorted(teams):
        try:
            _, team = config.team(team_id)
        except KeyError:
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


def paging_problems(config: RoutingConfig) -> list[Problem]:
    """Every cross-reference problem of members, schedules, gateways and policy steps."""
    out: list[Problem] = []
    for i, handler in enumerate(config.handlers):
        for j, team in enumerate(handler.teams):
            out += _team_problems(team, ("handlers", i, "teams", j))
    for n, dup in _duplicates([g.id for g in config.gateways]):
        out.append((("gateways", n, "id"), f"duplicate gateway id {dup}"))
    for i, policy in enumerate(config.policies):
        for k, step in enumerate(policy.steps):
            for m, page in enumerate(step.notify):
                at = ("policies", i, "steps", k, "notify", m)
                out += _page_problems(config, policy, page, at)
    return out
