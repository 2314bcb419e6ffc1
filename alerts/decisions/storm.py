"""Storm control: cap notifications per team per window; the rest fold into a digest.

Pure: the shell passes the times it already sent to the team (its outbox knows them) and how
many notifications are waiting; each is told to send or fold. Folded notifications stay in the
record; one digest for them goes out when the window has room again (`digest_due`), and the
digest counts as a send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    SEND = "send"
    FOLD = "fold"


@dataclass(frozen=True)
class StormControl:
    """At most `max_per_window` sends to one team in any `window_ms` (default: per minute)."""

    max_per_window: int = 10
    window_ms: int = 60_000

    def __post_init__(self) -> None:
        if self.max_per_window < 1 or self.window_ms < 1:
            raise ValueError("storm control needs max_per_window >= 1 and window_ms >= 1")

    def decide(self, sent_ms: Sequence[int], count: int, now_ms: int) -> tuple[Verdict, ...]:
        """Send or fold each of `count` notifications waiting for one team at `now_ms`.

        Args:
            sent_ms: when earlier notifications (and digests) to this team were sent.
            count: how many are waiting, in order.
            now_ms: the current time.

        Returns:
            One decision per waiting notification: the first ones that fit are sent.

        >>> StormControl(2).decide([0], 3, 1_000)
        (<Verdict.SEND: 'send'>, <Verdict.FOLD: 'fold'>, <Verdict.FOLD: 'fold'>)
        """
        room = max(0, self.max_per_window - self._recent(sent_ms, now_ms))
        return tuple(Verdict.SEND if i < room else Verdict.FOLD for i in range(count))

    def digest_due(self, sent_ms: Sequence[int], folded: int, now_ms: int) -> bool:
        """Whether a digest of `folded` held-back notifications may go out now."""
        return folded > 0 and self._recent(sent_ms, now_ms) < self.max_per_window

    def next_room_ms(self, sent_ms: Sequence[int], now_ms: int) -> int:
        """The earliest time another send fits (`now_ms` if it already does)."""
        recent = sorted(t for t in sent_ms if t > now_ms - self.window_ms)
        if len(recent) < self.max_per_window:
            return now_ms
        return recent[len(recent) - self.max_per_window] + self.window_ms

    def _recent(self, sent_ms: Sequence[int], now_ms: int) -> int:
        return sum(1 for t in sent_ms if now_ms - self.window_ms < t <= now_ms)
