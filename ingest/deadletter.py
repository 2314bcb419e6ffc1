"""Dead letters: a rejected message, a refused reading of one, a stored-refused point or an
unplaceable spool record, with why, on `deadletter/{device}`.

The letter is JSON ``{"reason", "detail", "topic", "payload", "encoding", "truncated"}``:
the payload as text when it is UTF-8, base64 otherwise, cut to `MAX_PAYLOAD_BYTES` so a
huge rejected message does not become a huge dead letter. A letter for one refused reading
of a message whose other readings were kept also names its ``metric``; its payload is the
whole message, so that the reading can be found in context. Letters from spool replay have
no message: their topic is empty and the detail says which spool record they came from.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

MAX_PAYLOAD_BYTES = 4096
WRITE_REJECTED = "write_rejected"  # InfluxDB refused the point (e.g. field type conflict)
SPOOL_UNPLACEABLE = "spool_unplaceable"  # a spool record whose readings cannot be placed
UNKNOWN_DEVICE_ID = "unknown"
_TOPIC_SEGMENT = re.compile(r"^[^/+#\x00]+$")


@dataclass(frozen=True)
class DeadLetter:
    device_id: str
    reason: str
    detail: str
    topic: str
    payload: bytes
    metric: str | None = None  # set when one reading was refused, not the whole message

    def mqtt_topic(self, prefix: str) -> str:
        return f"{prefix}deadletter/{self.device_id}"

    def to_json(self) -> bytes:
        body = self.payload[:MAX_PAYLOAD_BYTES]
        try:
            self.payload.decode("utf-8")
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode("ascii"), "base64"
        else:  # the cut may split a character: drop that partial tail
            text, encoding = body.decode("utf-8", errors="ignore"), "utf-8"
        letter = {
            "reason": self.reason,
            "detail": self.detail,
            "topic": self.topic,
            "payload": text,
            "encoding": encoding,
            "truncated": len(self.payload) > MAX_PAYLOAD_BYTES,
        }
        if self.metric is not None:
            letter["metric"] = self.metric
        return json.dumps(letter, ensure_ascii=False).encode()


def device_from_topic(topic: str) -> str:
    """The device id of `city/{district}/{device_id}/{kind}` (prefix already stripped).

    Anything else, or a segment that could not be published to, gives `unknown`.
    """
    parts = topic.split("/")
    return topic_segment(parts[2]) if len(parts) == 4 and parts[0] == "city" else UNKNOWN_DEVICE_ID


def topic_segment(device_id: str) -> str:
    """`device_id` if it can be one level of a topic we publish to, else `unknown`."""
    return device_id if _TOPIC_SEGMENT.match(device_id) else UNKNOWN_DEVICE_ID
