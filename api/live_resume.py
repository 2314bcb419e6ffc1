"""A live stream that resumes: the stored events a caller missed, then the live ones, no gap.

The caller subscribes to the `LiveHub` first and hands the subscription to `resumed`, which
reads the backlog (`alerts.sql.live_backlog`) after ``since`` and then forwards live events,
dropping those with an id it has already passed: nothing committed in between is lost (every
event is stored before it is published) and nothing comes twice. If the subscription falls
behind and the hub drops events, `resumed` catches up from the backlog the same way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import Event, Subscription
from alerts.sql import live_backlog
from api.security.principal import Principal, Role

Sessions = async_sessionmaker[AsyncSession]


def visible(caller: Principal, event: Event) -> bool:
    """Responders see only their teams' incident and dispatch events; other roles see all."""
    if caller.role is not Role.responder:
        return True
    return "team_id" in event and caller.sees_team(event["team_id"])


async def start_after(sessions: Sessions, since: int | None) -> int:
    """Where a stream starts: after `since`, or after the newest stored event (from now on)."""
    if since is not None:
        return since
    return (await live_backlog.span(sessions)).newest or 0


async def resumed(
    live: Subscription, sessions: Sessions, caller: Principal, since: int
) -> AsyncGenerator[Event, None]:
    """The events after `since` that `caller` may see, then live ones; a ``gap`` event first
    when the backlog no longer holds what followed `since`."""
    span = await live_backlog.span(sessions)
    cursor = since  # every event up to here was sent or is not for this caller
    if span.oldest is not None and since < span.oldest - 1:
        yield {"type": "gap", "since": since, "oldest": span.oldest}
    elif since > (span.newest or 0):
        yield {"type": "gap", "since": since, "oldest": span.oldest}
        cursor = span.newest or 0
    while True:
        dropped = live.dropped
        async for event in live_backlog.after(sessions, cursor):
            cursor = event["id"]
            if visible(caller, event):
                yield event
        async for event in live:
            if live.dropped != dropped:
                break  # the hub lost some of ours: read them from the backlog
            if event["id"] > cursor:
                cursor = event["id"]
                yield event
