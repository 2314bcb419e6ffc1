"""Dead-letter documents and their topics."""

from __future__ import annotations

import base64
import json

import pytest

from ingest.deadletter import MAX_PAYLOAD_BYTES, DeadLetter, device_from_topic


@pytest.mark.parametrize(
    ("topic", "device"),
    [
        ("city/d1/aq-1/data", "aq-1"),
        ("city/d1/gw-1/batch", "gw-1"),
        ("city/d1/aq-1", "unknown"),
        ("town/d1/aq-1/data", "unknown"),
        ("city/d1/a+b/data", "unknown"),
        ("city/d1//data", "unknown"),
    ],
    ids=["data", "batch", "short", "not-city", "wildcard", "empty"],
)
def test_device_from_topic(topic: str, device: str) -> None:
    assert device_from_topic(topic) == device


def _letter(payload: bytes) -> dict:
    letter = DeadLetter("aq-1", "malformed_json", "oops", "p/city/d1/aq-1/data", payload)
    assert letter.mqtt_topic("p/") == "p/deadletter/aq-1"
    return json.loads(letter.to_json())


def test_text_payload_is_kept_as_text() -> None:
    assert _letter(b'{"m": 1}') == {
        "reason": "malformed_json", "detail": "oops", "topic": "p/city/d1/aq-1/data",
        "payload": '{"m": 1}', "encoding": "utf-8", "truncated": False,
    }


def test_binary_payload_is_base64() -> None:
    letter = _letter(b"\xff\x00\x01")
    assert letter["encoding"] == "base64"
    assert base64.b64decode(letter["payload"]) == b"\xff\x00\x01"


def test_large_payload_is_truncated_without_splitting_a_character() -> None:
    payload = "é".encode() * MAX_PAYLOAD_BYTES  # 2 bytes each: the cut lands mid-character
    letter = _letter(b"x" + payload)
    assert letter["truncated"] is True and letter["encoding"] == "utf-8"
    assert letter["payload"] == "x" + "é" * ((MAX_PAYLOAD_BYTES - 1) // 2)
