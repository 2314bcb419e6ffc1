"""From notices to outbox rows, through storm control, inside the caller's transaction.

Storm control counts what each team was sent in the last window (the outbox knows) and folds
the excess: folded rows are written with status ``folded`` (kept for the record, never sent),
and `digests` later sends one digest per team for them once the window has room again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from alerts.decisions.notify import CapRenderer, Notice, digest, messages
from alerts.decisions.storm import StormControl, Verdict
from alerts.routing import RoutingConfig
from alerts.sql import outbox


class Planner:
    def __init__(
        self, routing: Callable[[], RoutingConfig], storm: StormControl, render_cap: CapRenderer
    ) -> None:
        self._routing = routing
        self._storm = storm
        self._render_cap = render_cap

    async def enqueue(
        self, session: AsyncSession, notices: Sequence[Notice], now_ms: int
    ) -> tuple[list[str], list[str]]:
        """Write each notice's messages; returns (keys to send, keys folded)."""
        if not notices:
            return [], []
        teams = sorted({n.team_id for n in notices})
        recent = await outbox.sent_times(session, teams, now_ms - self._storm.window_ms)
        sent: list[str] = []
        folded: list[str] = []
        for team in teams:
            mine = [n for n in notices if n.team_id == team]
            decisions = self._storm.decide(recent[team], len(mine), now_ms)
            for notice, decision in zip(mine, decisions, strict=True):
                send = decision is Verdict.SEND
                msgs = messages(notice, self._routing(), now_ms, self._render_cap)
                status = outbox.Status.PENDING if send else outbox.Status.FOLDED
                if await outbox.enqueue(session, msgs, now_ms, status):
                    (sent if send else folded).append(notice.key)
        return sent, folded

    async def digests(self, session: AsyncSession, now_ms: int) -> list[str]:
        """Enqueue a digest for each team whose folded notices may now go out."""
        waiting = await outbox.undigested(session)
        if not waiting:
            return []
        since_ms = now_ms - self._storm.window_ms
        recent = await outbox.sent_times(session, sorted(waiting), since_ms)
        out = []
        for team, rows in sorted(waiting.items()):
            keys = list(dict.fromkeys(r.key for r in rows))
            if not self._storm.digest_due(recent[team], len(keys), now_ms):
                continue
            key = f"digest:{team}:{rows[0].id}"
            incident_ids = [r.incident_id for r in rows if r.incident_id]
            msgs = digest(team, keys, incident_ids, self._routing(), now_ms, key)
            await outbox.enqueue(session, msgs, now_ms)
            await outbox.mark_digested(session, [r.id for r in rows], key)
            out.append(key)
        return out
