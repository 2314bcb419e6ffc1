"""Webhook channel: POST the body (JSON or CAP XML) signed the Standard Webhooks way.

Headers (https://www.standardwebhooks.com): ``webhook-id`` (the outbox key, identical on every
retry, so a receiver can drop duplicates; also sent as ``Idempotency-Key``),
``webhook-timestamp`` (epoch seconds of this attempt) and ``webhook-signature: v1,<base64
HMAC-SHA256 of "{id}.{timestamp}.{body}">``, so a receiver can refuse a replayed request
(`verify` does: 5 minutes either way). The team's secret is read from the environment variable
named by the routing file, at send time, so it never reaches the database. A secret in the
spec's ``whsec_<base64>`` form is used as the bytes it encodes; any other value as its UTF-8
bytes, so secrets set before keep working (receivers then give `Webhook` those bytes).
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
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.channels.base import ChannelError
from alerts.sql.outbox import Delivery, Status
from devices.clock import now_ms

SPEC_SECRET_PREFIX = "whsec_"
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


def _webhook(secret: str) -> Webhook:
    return Webhook(secret if secret.startswith(SPEC_SECRET_PREFIX) else secret.encode())


def signed_headers(secret: str, message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of `body` sent as `message_id` at `timestamp_s`."""
    moment = datetime.fromtimestamp(timestamp_s, UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": _webhook(secret).sign(message_id, moment, body),
    }


def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """What a receiver does: True when the signature is the secret's over this id, timestamp
    and body, and the timestamp is within 5 minutes of now (an old request replayed is not)."""
    try:
        _webhook(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError:
        return False
    return True


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        secrets: Mapping[str, str] = os.environ,
        timeout_s: float = 10.0,
        deadline_s: float = 15.0,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        self._secrets = secrets
        self._deadline_s = deadline_s
        self._clock_ms = clock_ms

    async def send(self, delivery: Delivery) -> Status:
        url = self._url(delivery.target)
        secret = self._secrets.get(delivery.secret_env or "")
        if not secret:
            reason = f"secret environment variable {delivery.secret_env!r} is not set"
            raise ChannelError(self.name, reason, retryable=False)
        headers = {
            "Content-Type": delivery.content_type,
            "Idempotency-Key": delivery.key,
            "X-Urbanwatch-Event": delivery.event,
            **signed_headers(secret, delivery.key, self._clock_ms() // 1000, delivery.body),
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
