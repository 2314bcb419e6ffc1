"""The e-mail channel against a real SMTP server (aiosmtpd, started by the fixture)."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from alerts.channels.base import ChannelError
from alerts.channels.email import EmailChannel, SmtpServer
from alerts.decisions.book import Book
from alerts.decisions.page_text import PageContext
from alerts.decisions.planning import OutboxView
from alerts.routing import load_routing
from alerts.sql.outbox import Delivery, Status
from rules.detection import Category, Detection, DetectionState, Severity
from tests.alerts.conftest import SmtpServer as Server
from urbanwatch.services.ports import free_port

EXAMPLE = Path(__file__).parents[3] / "docs" / "routing-oncall.example.yaml"
T0 = 1_767_661_200_000
SENDER = "ops@city.example.org"


def paged_email() -> Delivery:
    """The e-mail the example policy's first step writes to the outbox, as claimed."""
    book = Book(load_routing(EXAMPLE), device_types={"gas-1": "gas"},
                paging=PageContext("Asia/Shanghai", "https://ops.example.org"))
    leak = Detection("gas-high", Category.SAFETY, "gas-1", DetectionState.FIRING, Severity.RED,
                     T0, 80.0, "gas-1", "ch4", "dongcheng", "dongcheng-g1")
    book = book.apply([leak], T0, OutboxView()).book
    [message] = [m for mail in book.tick(T0 + 1000, OutboxView()).mail for m in mail.messages]
    return Delivery(1, message.key, message.channel, message.target, message.content_type,
                    message.body.encode(), message.team_id, message.event, message.incident_id,
                    None, 0, T0 + 3600_000)


def channel(server: Server, **kwargs) -> EmailChannel:
    return EmailChannel(SmtpServer(server.host, server.port, SENDER, "none", **kwargs))


async def test_an_email_reaches_the_server_from_the_sender_to_the_person(smtp_server: Server):
    delivery = paged_email()
    assert await channel(smtp_server).send(delivery) is Status.PUBLISHED
    [mail] = smtp_server.mails
    assert (mail.sender, mail.recipients) == (SENDER, ["li.wei@gas.example.org"])
    received = message_from_bytes(mail.data, policy=policy.default)
    assert received["From"] == SENDER and received["To"] == "Li Wei <li.wei@gas.example.org>"
    assert received["Subject"].startswith("[RED I] ")
    assert received.get_body(("html",)) is not None


async def test_a_login_is_used_when_given(smtp_login_server: Server):
    await channel(smtp_login_server, username="urbanwatch", password="mail-secret").send(
        paged_email())
    assert smtp_login_server.logins == ["urbanwatch"] and len(smtp_login_server.mails) == 1


async def test_a_wrong_login_is_not_retried(smtp_login_server: Server):
    with pytest.raises(ChannelError) as caught:
        await channel(smtp_login_server, username="urbanwatch", password="wrong").send(
            paged_email())
    assert not caught.value.retryable and "535" in caught.value.reason
    assert smtp_login_server.mails == []


async def test_a_refused_mailbox_is_not_retried(smtp_server: Server):
    smtp_server.refuse.add("li.wei@gas.example.org")
    with pytest.raises(ChannelError) as caught:
        await channel(smtp_server).send(paged_email())
    assert not caught.value.retryable and caught.value.reason.startswith("SMTP 550")


async def test_a_server_that_is_down_is_retried():
    down = Server("127.0.0.1", free_port())
    with pytest.raises(ChannelError) as caught:
        await channel(down, timeout_s=5).send(paged_email())
    assert caught.value.retryable and caught.value.channel == "email"
