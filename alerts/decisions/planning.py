"""From notices to outbox mail, through storm control.

Storm control counts what each team was sent in the last window (`OutboxView.sent`, loaded from
the outbox) and folds the excess: folded mail is written with status ``folded`` (kept for the
record, never sent), and `digests` later plans one digest per team for it once the window has
room again. Pure: the SQL side loads the `OutboxView` and writes the `Mail`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from alerts.decisions.notify import CapRenderer, Message, Notice, digest, messages
from alerts.decisions.storm import StormControl, Verdict
from alerts.routing import RoutingConfig


@dataclass(frozen=True)
class Folded:
    """An outbox row held back by storm control, not yet covered by a digest."""

    id: int
    key: str
    team_id: str
    incident_id: str | None


@dataclass(frozen=True)
class OutboxView:
    """What storm control needs from the outbox.

    `sent`: per team, each key sent within the storm window with the time it was first
    written (folded rows excluded). `folded`: per team, the folded rows awaiting a digest,
    oldest first (loaded for a tick only).
    """

    sent: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    folded: Mapping[str, Sequence[Folded]] = field(default_factory=dict)

    def sent_ms(self, team_id: str) -> list[int]:
        return list(self.sent.get(team_id, {}).values())


@dataclass(frozen=True)
class Mail:
    """Outbox messages for one notice (or digest) under one key; `digested` are the ids of
    the folded rows a digest covers."""

    key: str
    messages: tuple[Message, ...]
    verdict: Verdict = Verdict.SEND
    digested: tuple[int, ...] = ()


def plan(
    notices: Sequence[Notice],
    view: OutboxView,
    storm: StormControl,
    routing: RoutingConfig,
    now_ms: int,
    render_cap: CapRenderer,
) -> tuple[tuple[Mail, ...], OutboxView]:
    """Mail for each notice, team by team, sent or folded; and the view with these sends."""
    out: list[Mail] = []
    sent = {team: dict(keys) for team, keys in view.sent.items()}
    for team in sorted({n.team_id for n in notices}):
        mine = [n for n in notices if n.team_id == team]
        verdicts = storm.decide(view.sent_ms(team), len(mine), now_ms)
        for notice, verdict in zip(mine, verdicts, strict=True):
            msgs = tuple(messages(notice, routing, now_ms, render_cap))
            out.append(Mail(notice.key, msgs, verdict))
            if verdict is Verdict.SEND and msgs:
                sent.setdefault(team, {}).setdefault(notice.key, now_ms)
    return tuple(out), OutboxView(sent, view.folded)


def digests(
    view: OutboxView, storm: StormControl, routing: RoutingConfig, now_ms: int
) -> tuple[Mail, ...]:
    """A digest for each team whose folded notices may now go out.

    Only folded rows already in the outbox are summed up: a team that had notices folded in
    this same decision has no room in its window, so no digest is due for it yet.
    """
    out = []
    for team, rows in sorted(view.folded.items()):
        keys = list(dict.fromkeys(r.key for r in rows))
        if not rows or not storm.digest_due(view.sent_ms(team), len(keys), now_ms):
            continue
        key = f"digest:{team}:{rows[0].id}"
        incident_ids = [r.incident_id for r in rows if r.incident_id]
        msgs = digest(team, keys, incident_ids, routing, now_ms, key)
        out.append(Mail(key, tuple(msgs), Verdict.SEND, tuple(r.id for r in rows)))
    return tuple(out)

