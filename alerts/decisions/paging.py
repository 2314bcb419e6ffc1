"""Run an incident's due policy steps: find who is on duty, write their pages as outbox mail.

Pure. Each step that runs adds one ``paged`` entry to the timeline (who was paged, and how;
or why someone could not be), which is also how `escalation.steps_done` knows it ran. Each page
is one outbox message keyed ``{incident}:page:{seq}:{member}`` (`seq`: the index of that
timeline entry), so planning the same step again yields the same rows. Pages are not folded by
storm control: there are at most a few per incident, and each is addressed to one person.
"""

from __future__ import annotations

from dataclasses import replace

from alerts import templates
from alerts.decisions import incidents as machine
from alerts.decisions.escalation import steps_due
from alerts.decisions.grouping import SYSTEM
from alerts.decisions.notify import JSON, Message
from alerts.decisions.oncall import on_duty
from alerts.decisions.page_text import PageContext, email, facts
from alerts.errors import UnknownTeamError
from alerts.model import Incident, TimelineKind
from alerts.routing import Policy, RoutingConfig
from alerts.schedules import Member
from alerts.steps import EMAIL, Page

RFC822 = "message/rfc822"
EVENT = "page"


def _on_duty(
    page: Page, incident: Incident, routing: RoutingConfig, now_ms: int, tz: str
) -> Member | str:
    """Who `page` goes to now, or why nobody can be found."""
    named, schedule_id = page.schedule
    team_id = named or incident.team_id or ""
    try:
        _, team = routing.team(team_id)
    except UnknownTeamError:
        return f"no team {team_id!r}"
    schedule = team.schedule(schedule_id)
    if schedule is None:
        return f"team {team_id} has no on-call schedule {schedule_id!r}"
    return team.member(on_duty(schedule, now_ms, tz))


def _message(
    page: Page, member: Member, values: dict[str, str], routing: RoutingConfig, base: Message,
    sent_ms: int, tz: str,
) -> Message | str:
    """The outbox message of one page, or why it cannot be sent."""
    if page.channel == EMAIL:
        if member.email is None:
            return f"{member.id} has no e-mail address"
        body = email(values, member.name, member.email, base.key, sent_ms, tz)
        return replace(base, channel=EMAIL, target=member.email, content_type=RFC822, body=body)
    gateway = routing.gateway(page.channel)
    if gateway is None:
        return f"no gateway {page.channel!r}"
    if member.phone is None:
        return f"{member.id} has no phone number"
    body = templates.render(gateway.body if page.body is None else page.body,
                            {**values, "to": member.phone})
    return replace(base, channel=f"gateway.{gateway.id}", target=gateway.url, content_type=JSON,
                   body=body, secret_env=gateway.secret_env)


def _step(
    incident: Incident, n: int, policy: Policy, routing: RoutingConfig, context: PageContext,
    now_ms: int,
) -> tuple[Incident, list[Message]]:
    seq = len(incident.timeline)  # the index of the `paged` entry this step adds
    shared = {**facts(incident, context), "step": str(n + 1)}
    out, said = [], []
    for page in policy.steps[n].notify:
        member = _on_duty(page, incident, routing, now_ms, context.tz)
        if isinstance(member, str):
            said.append(f"{page.channel} to {page.to}: {member}")
            continue
        values = {**shared, "name": member.name, "member": member.id}
        base = Message(f"{incident.id}:{EVENT}:{seq}:{member.id}", "", "", "", "",
                       incident.team_id or "", EVENT, incident_id=incident.id)
        message = _message(page, member, values, routing, base, now_ms, context.tz)
        if isinstance(message, str):
            said.append(f"{page.channel} to {page.to}: {message}")
            continue
        out.append(message)
        said.append(f"{page.channel} to {page.to}: {member.name} ({member.id})")
    detail = f"step {n + 1} (after {policy.steps[n].after_s} s): " + "; ".join(said)
    return machine.record(incident, TimelineKind.PAGED, SYSTEM, now_ms, detail), out


def run_steps(
    incident: Incident, policy: Policy, routing: RoutingConfig, context: PageContext, now_ms: int
) -> tuple[Incident, list[Message]]:
    """`incident` with a ``paged`` entry for each step due at `now_ms`, and their messages."""
    messages: list[Message] = []
    for n in steps_due(incident, policy, now_ms):
        incident, sent = _step(incident, n, policy, routing, context, now_ms)
        messages += sent
    return incident, messages
