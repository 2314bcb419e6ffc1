"""Webhook channel: POST the body (JSON or CAP XML) signed with the team's secret.

Headers: ``Idempotency-Key`` (the outbox key; identical on every retry) and
``X-Urbanwatch-Signature: sha256=<hex HMAC-SHA256 of the body>``. The secret is read from the
environment variable named by the routing file, at send time, so it never reaches the database.
2xx is delivered; 408, 429, 5xx, transport errors and an attempt past its deadline may pass
and are retryable; other 4xx, a missing secret and a target that is no http(s) URL are not.
Each attempt has an overall deadline (`deadline_s`: connect, send and the whole answer, not
only each read), and at most `MAX_BODY_BYTES` of the answer are read, so a receiver that
dribbles or never answers holds one attempt only so long. A URL may carry a secret of its
own (a token in its path or query), so failure reasons, which end up on incident timelines,
name it only by `redacted_url`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from collections.abc import Mapping

import httpx

from alerts.channels.base import ChannelError
from alerts.sql.outbox import Delivery, Status

SIGNATURE_HEADER = "X-Urbanwatch-Signature"
MAX_BODY_BYTES = 64 * 1024  # of a receiver's answer; only its status matters
_RETRYABLE_STATUS = frozenset({408, 425, 429})
# scheme and host of a webhook URL, past any user info; a URL it does not fit shows no host
_WEBHOOK_HOST = re.compile(
    r"(https?)://(?:[^/?#@]*@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?(?=[/?#]|$)"
)


def redacted_url(url: str) -> str:
    """Scheme and host of `url`, the rest replaced by `/…`."""
    found = _WEBHOOK_HOST.match(url)
    return f"{found[1]}://{found[2]}/…" if found else "…"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: constant-time comparison of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        secrets: Mapping[str, str] = os.environ,
        timeout_s: float = 10.0,
        deadline_s: float = 15.0,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        self._secrets = secrets
        self._deadline_s = deadline_s

    async def send(self, delivery: Delivery) -> Status:
        url = self._url(delivery.target)
        secret = self._secrets.get(delivery.secret_env or "")
        if not secret:
            reason = f"secret environment variable {delivery.secret_env!r} is not set"
            raise ChannelError(self.name, reason, retryable=False)
        headers = {
            "Content-Type": delivery.content_type,
            "Idempotency-Key": delivery.key,
            SIGNATURE_HEADER: sign(secret, delivery.body),
            "X-Urbanwatch-Event": delivery.event,
        }
        where = redacted_url(delivery.target)
        try:
            async with asyncio.timeout(self._deadline_s):
                status = await self._post(url, delivery.body, headers)
        except TimeoutError as exc:
            reason = f"no complete answer from {where} within {self._deadline_s:g} s"
            raise ChannelError(self.name, reason, retryable=True) from exc
        except httpx.HTTPError as exc:
            # the type says what happened (ConnectError, ReadTimeout …); its message may
            # quote the URL in a form `redacted_url` would not recognise
            raise ChannelError(self.name, f"{type(exc).__name__} from {where}",
                               retryable=True) from exc
        if 200 <= status < 300:  # the receiver confirmed it
            return Status.DELIVERED
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        raise ChannelError(self.name, f"HTTP {status} from {redacted_url(delivery.target)}",
                           retryable=retryable)

    async def _post(self, url: httpx.URL, body: bytes, headers: dict[str, str]) -> int:
        """POST and read at most `MAX_BODY_BYTES` of the answer; its status code."""
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_BODY_BYTES:
                    break
            return response.status_code

    def _url(self, target: str) -> httpx.URL:
        """`target` as an http(s) URL with a host; anything else can never be delivered."""
        try:
            url = httpx.URL(target)
        except httpx.InvalidURL as exc:
            reason = f"invalid webhook URL {redacted_url(target)}"
            raise ChannelError(self.name, reason, retryable=False) from exc
        if url.scheme not in ("http", "https") or not url.host:
            reason = f"webhook URL {redacted_url(target)} is not http(s)://host/…"
            raise ChannelError(self.name, reason, retryable=False)
        return url

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
