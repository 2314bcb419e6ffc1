"""E-mail channel: send an outbox row's message (RFC 5322, written by `decisions.page_text`)
to its target address over SMTP, with aiosmtplib.

The channel adds the ``From`` header (its sender address) and talks to one SMTP server: plain,
STARTTLS or implicit TLS (``ssl``), with an optional login. A reply in the 2xx range is
`Status.PUBLISHED`: the server accepted the message, which says nothing of the person reading
it. SMTP's own distinction decides retries: a 4xx reply, a dropped connection or a timeout may
pass (retryable); a 5xx reply (no such mailbox, login refused) will not.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_string, policy
from email.message import EmailMessage
from typing import Literal, cast

import aiosmtplib

from alerts.channels.base import ChannelError
from alerts.sql.outbox import Delivery, Status

Security = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send; `password` only with `username`."""

    host: str
    port: int
    sender: str
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


def _code(exc: aiosmtplib.SMTPException) -> int | None:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return exc.recipients[0].code
    return exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None


class EmailChannel:
    name = "email"

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def send(self, delivery: Delivery) -> Status:
        message = cast(EmailMessage, message_from_string(delivery.body.decode(),
                                                         policy=policy.SMTP))
        del message["From"]
        message["From"] = self._server.sender
        s = self._server
        try:
            await aiosmtplib.send(
                message, sender=s.sender, recipients=[delivery.target], hostname=s.host,
                port=s.port, username=s.username, password=s.password, timeout=s.timeout_s,
                use_tls=s.security == "ssl", start_tls=s.security == "starttls",
            )
        except aiosmtplib.SMTPException as exc:
            code = _code(exc)
            reason = f"SMTP {code}: {exc}" if code else f"{type(exc).__name__} from {s.host}"
            raise ChannelError(self.name, reason, retryable=code is None or code < 500) from exc
        except OSError as exc:  # refused, unreachable, TLS handshake
            raise ChannelError(self.name, f"{type(exc).__name__} from {s.host}:{s.port}",
                               retryable=True) from exc
        return Status.PUBLISHED
