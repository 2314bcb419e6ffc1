"""The channel contract: send one claimed outbox row or raise `ChannelError`.

A channel only talks to its backend; retries, backoff and giving up belong to the dispatcher,
which decides from `ChannelError.retryable` whether trying again can help.
"""

from __future__ import annotations

from typing import Protocol

from alerts.errors import AlertError
from alerts.sql.outbox import Delivery


class ChannelError(AlertError):
    """Sending over `channel` failed; `retryable` says whether trying again may succeed."""

    def __init__(self, channel: str, reason: str, *, retryable: bool) -> None:
        self.channel = channel
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{channel}: {reason}")


class Channel(Protocol):
    """Delivers outbox rows whose `channel` column equals `name`."""

    name: str

    async def send(self, delivery: Delivery) -> None:
        """Deliver once, carrying `delivery.key` so the receiver can drop duplicates."""
        ...
