"""The channel contract: send one claimed outbox row or raise `ChannelError`.

`send` returns how far the row got: `Status.DELIVERED` when the receiver confirmed it (a
webhook's 2xx), `Status.PUBLISHED` when only a broker accepted it (MQTT PUBACK).

A channel only talks to its backend; retries, backoff and giving up belong to the dispatcher,
which decides from `ChannelError.retryable` whether trying again can help.
"""

from __future__ import annotations

from typing import Protocol

from alerts.errors import AlertError
from alerts.sql.outbox import Delivery, Status


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

    async def send(self, delivery: Delivery) -> Status:
        """Deliver once, carrying `delivery.key` so the receiver can drop duplicates."""
        ...
