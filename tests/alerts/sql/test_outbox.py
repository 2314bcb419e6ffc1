"""The persisted outbox: idempotent enqueue, leased claims, outcomes; SQLite and PostgreSQL."""

from __future__ import annotations

from alerts.decisions.notify import Message
from alerts.sql import outbox
from alerts.sql.outbox import Status
from tests.alerts.conftest import T0


def message(key="in-1:dispatched:1:gas-emergency", channel="webhook") -> Message:
    return Message(
        key=key,
        channel=channel,
        target="http://127.0.0.1:9/hook",
        content_type="application/json",
        body='{"a":1}',
        team_id="gas-emergency",
        event="dispatched",
        incident_id=None,
        secret_env="HOOK_SECRET",
    )


async def test_the_same_key_is_never_enqueued_twice(sessions):
    async with sessions.begin() as session:
        added = await outbox.enqueue(session, [message(), message()], T0)
        assert added == [message()]
    async with sessions.begin() as session:  # a replay after a crash plans the same key again
        assert await outbox.enqueue(session, [message()], T0 + 5) == []
        other = await outbox.enqueue(session, [message(channel="mqtt"), message(key="k2")], T0)
        assert len(other) == 2
    async with sessions() as session:
        rows = await outbox.rows(session)
    assert [(r.key, r.channel, r.created_ms) for r in rows] == [
        ("in-1:dispatched:1:gas-emergency", "webhook", T0),
        ("in-1:dispatched:1:gas-emergency", "mqtt", T0),
        ("k2", "webhook", T0),
    ]


async def test_claims_are_leased_and_due_rows_only(sessions):
    async with sessions.begin() as session:
        await outbox.enqueue(session, [message()], T0)
        await outbox.enqueue(session, [message(key="folded")], T0, Status.FOLDED)
    claim = dict(limit=10, lease_ms=1_000, give_up_after_ms=60_000)
    assert await outbox.claim(sessions, T0 - 1, **claim) == []  # not due yet
    [first] = await outbox.claim(sessions, T0, **claim)
    assert (first.key, first.body, first.attempts, first.give_up_ms) == (
        message().key,
        b'{"a":1}',
        0,
        T0 + 60_000,
    )
    assert await outbox.claim(sessions, T0 + 999, **claim) == []  # leased
    [again] = await outbox.claim(sessions, T0 + 1_000, **claim)  # the lease ran out
    assert again.id == first.id and again.give_up_ms == T0 + 60_000  # the give-up clock stays


async def test_retry_then_delivered(sessions):
    async with sessions.begin() as session:
        await outbox.enqueue(session, [message()], T0)
    claim = dict(limit=10, lease_ms=1_000, give_up_after_ms=60_000)
    [d] = await outbox.claim(sessions, T0, **claim)
    async with sessions.begin() as session:
        await outbox.mark_retry(session, d.id, T0 + 500, "HTTP 500")
    assert await outbox.claim(sessions, T0 + 499, **claim) == []
    [d2] = await outbox.claim(sessions, T0 + 500, **claim)
    assert d2.attempts == 1
    async with sessions.begin() as session:
        await outbox.mark_sent(session, d2.id, T0 + 600, outbox.Status.DELIVERED)
    assert await outbox.claim(sessions, T0 + 10_000, **claim) == []
    async with sessions() as session:
        [row] = await outbox.rows(session)
    assert (row.status, row.attempts, row.done_ms, row.last_error) == (
        "delivered",
        2,
        T0 + 600,
        None,
    )


async def test_view_counts_keys_not_channels_and_skips_folded(sessions):
    async with sessions.begin() as session:
        await outbox.enqueue(session, [message("a"), message("a", "mqtt")], T0)
        await outbox.enqueue(session, [message("b")], T0 + 10)
        await outbox.enqueue(session, [message("c")], T0 + 20, Status.FOLDED)
        view = await outbox.view(session, T0 - 1, folded=True)
        waiting = view.folded["gas-emergency"]
        await outbox.mark_digested(session, [r.id for r in waiting], "digest:x")
        assert (await outbox.view(session, T0 - 1, folded=True)).folded == {}
        assert (await outbox.view(session, T0, folded=False)).sent_ms("gas-emergency") == [T0 + 10]
    assert view.sent == {"gas-emergency": {"a": T0, "b": T0 + 10}}
    assert view.sent_ms("ecc-duty") == []
    assert [r.key for r in waiting] == ["c"]
