"""The dispatcher draining a real outbox to a real HTTP receiver: retries, restarts, giving up."""

from __future__ import annotations

import asyncio
import json

from alerts.channels.dispatcher import Dispatcher, RetryPolicy
from alerts.channels.live import LiveHub
from alerts.channels.webhook import WebhookChannel, verify
from alerts.decisions.incidents import record
from alerts.decisions.notify import Message
from alerts.model import Incident, IncidentState, Member, TimelineKind
from alerts.sql import outbox
from alerts.sql.repository import load_incidents, save_incidents
from rules.detection import Category, Severity
from tests.alerts.conftest import T0
from tests.support.polling import eventually

SECRET = "hook-secret"
KEY = "in-1:dispatched:1:gas-emergency"
FAST = RetryPolicy(base_ms=50, factor=2, max_delay_ms=400, jitter=0.5, give_up_after_ms=60_000)


async def seed(sessions, url: str) -> None:
    """One incident and one webhook notification for it in the outbox."""
    member = Member("al-1", "gas-high", Severity.RED, "gas-1", "dongcheng", None)
    incident = Incident("in-1", "Gas", Category.SAFETY, IncidentState.NEW, (member,), T0, T0, T0)
    incident = record(incident, TimelineKind.OPENED, "system", T0)
    m = Message(
        KEY,
        "webhook",
        url,
        "application/json",
        json.dumps({"key": KEY}),
        "gas-emergency",
        "dispatched",
        "in-1",
        "HOOK_SECRET",
    )
    async with sessions.begin() as session:
        await save_incidents(session, [(None, incident)], {"in-1": "standard"})
        await outbox.enqueue(session, [m], T0)


def dispatcher(sessions, retry=FAST, hub=None) -> Dispatcher:
    channel = WebhookChannel(secrets={"HOOK_SECRET": SECRET})
    return Dispatcher(sessions, {"webhook": channel}, retry=retry, hub=hub, poll_s=0.02)


async def row(sessions):
    async with sessions() as session:
        [r] = await outbox.rows(session)
    return r


async def run_until_done(sessions, d: Dispatcher) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    try:
        await eventually(lambda: _done(sessions), "the message delivered or given up",
                         interval_s=0.02)
    finally:
        stop.set()
        await task


async def _done(sessions) -> bool:
    return (await row(sessions)).status != "pending"


async def timeline(sessions) -> list[str]:
    async with sessions() as session:
        [(incident, _)] = await load_incidents(session, ids=["in-1"])
    return [e.detail for e in incident.timeline if e.kind is TimelineKind.NOTIFIED]


async def test_three_failures_then_exactly_one_effective_delivery(sessions, receiver):
    receiver.fail_first = 3
    await seed(sessions, receiver.url)
    hub = LiveHub()
    outcomes = hub.subscribe()
    await run_until_done(sessions, dispatcher(sessions, hub=hub))
    assert [c.status for c in receiver.calls] == [500, 500, 500, 200]
    assert {c.headers["idempotency-key"] for c in receiver.calls} == {KEY}
    assert all(verify(SECRET, c.body, c.headers) for c in receiver.calls)
    assert list(receiver.effective) == [KEY]
    r = await row(sessions)
    assert (r.status, r.attempts, r.last_error) == ("delivered", 4, None)
    notes = await timeline(sessions)
    assert len(notes) == 4 and "attempt 3 failed: HTTP 500" in notes[2]
    assert notes[3].startswith("webhook delivered (attempt 4)") and KEY in notes[3]
    seen = [(await anext(outcomes))["outcome"] for _ in range(4)]
    assert seen == ["retrying", "retrying", "retrying", "delivered"]


async def test_killed_between_attempts_and_restarted_delivers_once(sessions, receiver):
    receiver.fail_first = 2
    await seed(sessions, receiver.url)
    slow = RetryPolicy(base_ms=300, factor=1, jitter=0, give_up_after_ms=60_000)
    task = asyncio.create_task(dispatcher(sessions, slow).run(asyncio.Event()))

    async def first_attempt_recorded() -> bool:
        return (await row(sessions)).attempts == 1

    await eventually(first_attempt_recorded, "the first attempt recorded", interval_s=0.02)
    task.cancel()  # the process dies while waiting to retry
    await asyncio.gather(task, return_exceptions=True)
    assert len(receiver.calls) == 1 and (await row(sessions)).status == "pending"
    await run_until_done(sessions, dispatcher(sessions, slow))  # a new process
    assert [c.status for c in receiver.calls] == [500, 500, 200]
    assert list(receiver.effective) == [KEY]
    assert (await row(sessions)).status == "delivered"


async def test_gives_up_after_the_configured_time(sessions, receiver):
    receiver.fail_first = 10_000
    await seed(sessions, receiver.url)
    brief = RetryPolicy(base_ms=20, factor=2, max_delay_ms=50, jitter=0.5, give_up_after_ms=300)
    await run_until_done(sessions, dispatcher(sessions, brief))
    r = await row(sessions)
    assert r.status == "failed" and r.attempts >= 2 and r.last_error.startswith("HTTP 500")
    assert receiver.effective == {}
    notes = await timeline(sessions)
    assert notes[-1].startswith(f"webhook gave up after {r.attempts} attempt(s): HTTP 500")


async def test_a_rejected_request_is_not_retried(sessions, receiver):
    receiver.fail_first, receiver.fail_status = 10, 400
    await seed(sessions, receiver.url)
    await run_until_done(sessions, dispatcher(sessions))
    assert len(receiver.calls) == 1
    r = await row(sessions)
    assert (r.status, r.attempts) == ("failed", 1)


def test_backoff_grows_exponentially_with_bounded_jitter():
    policy = RetryPolicy(base_ms=1_000, factor=2, max_delay_ms=10_000, jitter=0.5)
    assert [policy.delay_ms(n, 0.0) for n in range(1, 6)] == [1_000, 2_000, 4_000, 8_000, 10_000]
    assert policy.delay_ms(3, 0.999) == 2_002  # at most half of it is taken off
