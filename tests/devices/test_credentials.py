"""Rendering Mosquitto's password and ACL files from devices, credentials and platform users."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.credentials import (
    Credential,
    PlatformUser,
    hash_password,
    password_line,
    render_acl_file,
    render_password_file,
    topic_line,
    user_line,
    username_problem,
    verify_password,
)
from devices.errors import DeviceError, RegistryError
from devices.registry import Device, DeviceStatus

DEVICES = [
    Device("gw-1", "weather", "north", 1, 1),
    Device("aq-1", "air_quality", "north", 1, 1, gateway="gw-1"),
    Device("aq-2", "air_quality", "south", 1, 1, gateway="gw-1"),
    Device("aq-3", "air_quality", "south", 1, 1, status=DeviceStatus.RETIRED, gateway="gw-1"),
    Device("aq-4", "air_quality", "south", 1, 1),  # revoked
    Device("aq-5", "air_quality", "south", 1, 1),  # never issued
]
CREDENTIALS = {
    d: Credential(d, f"$7$101$s$h-{d}", 0, revoked_ms=5 if d == "aq-4" else None)
    for d in ("gw-1", "aq-1", "aq-2", "aq-3", "aq-4")
}
PLATFORM = [PlatformUser("urbanwatch.ingest", "$7$101$s$h-i", ("city/#",), ("deadletter/#",))]


def test_password_file_lists_platform_users_and_admitted_devices() -> None:
    text = render_password_file(DEVICES, CREDENTIALS, PLATFORM)

    assert text == (
        "urbanwatch.ingest:$7$101$s$h-i\n"
        "gw-1:$7$101$s$h-gw-1\naq-1:$7$101$s$h-aq-1\naq-2:$7$101$s$h-aq-2\n"
    )


def test_acl_gives_explicit_topics_with_the_prefix() -> None:
    text = render_acl_file(DEVICES, CREDENTIALS, PLATFORM, prefix="t1/")

    assert text == (
        "user urbanwatch.ingest\ntopic read t1/city/#\ntopic write t1/deadletter/#\n\n"
        "user gw-1\ntopic write t1/city/north/gw-1/data\ntopic write t1/city/north/gw-1/batch\n"
        "topic write t1/city/north/aq-1/data\ntopic write t1/city/south/aq-2/data\n\n"  # not aq-3
        "user aq-1\ntopic write t1/city/north/aq-1/data\ntopic write t1/city/north/aq-1/batch\n\n"
        "user aq-2\ntopic write t1/city/south/aq-2/data\ntopic write t1/city/south/aq-2/batch\n"
    )
    assert "pattern" not in text


def test_a_device_named_like_a_platform_user_is_refused() -> None:
    device = Device("urbanwatch.ingest", "noise", "north", 1, 1)
    credentials = {device.id: Credential(device.id, "$7$x", 0)}

    with pytest.raises(RegistryError, match="platform MQTT user"):
        render_acl_file([device], credentials, PLATFORM)
    assert "reserved" in (username_problem("urbanwatch.x") or "")
    assert username_problem("aq-1") is None


def test_hashes_are_salted_and_verify() -> None:
    first, second = hash_password("pw"), hash_password("pw")

    assert first != second and first.startswith("$7$101$")
    assert verify_password("pw", first) and not verify_password("pW", first)
    assert not verify_password("pw", "not a hash")


# Text of every kind, and text made of what could split a line or a token.
ANY_TEXT = st.text() | st.text(alphabet=st.sampled_from(list("ab:+#/ \t\n\r\x00\x0b\x85\u2028")))


def _refused_or(render, *args):
    try:
        return render(*args)
    except RegistryError as exc:
        assert "cannot be written into the broker's files" in str(exc) or "topic filter" in str(exc)
        return None


@given(ANY_TEXT, ANY_TEXT)
def test_a_password_line_is_one_line_that_reads_back(username: str, password_hash: str) -> None:
    line = _refused_or(password_line, username, password_hash)
    if line is not None:
        assert line.endswith("\n") and len(line.splitlines()) == 1
        assert line[:-1].split(":", 1) == [username, password_hash]
        assert len(line.split()) == 1


@given(ANY_TEXT)
def test_a_user_line_is_one_line_of_two_tokens(username: str) -> None:
    line = _refused_or(user_line, username)
    if line is not None:
        assert len(line.splitlines()) == 1 and line.split() == ["user", username]


@given(st.sampled_from(["read", "write"]), ANY_TEXT)
def test_a_topic_line_is_one_line_of_three_tokens(access: str, topic: str) -> None:
    line = _refused_or(topic_line, access, topic)
    if line is not None:
        assert len(line.splitlines()) == 1 and line.split() == ["topic", access, topic]
        levels = topic.split("/")
        assert all(lv in ("+", "#") or not {"+", "#"} & set(lv) for lv in levels)
        assert "#" not in levels[:-1]


@pytest.mark.parametrize(
    ("render", "args"),
    [(password_line, ("aq\nuser x", "$7$h")), (password_line, ("aq:1", "$7$h")),
     (password_line, ("aq", "$7$h\nx:y")), (user_line, ("a b",)), (user_line, ("#",)),
     (topic_line, ("write", "city/a b/#")), (topic_line, ("read", "city/#/x")),
     (topic_line, ("read", "city/a+/x")), (topic_line, ("read", ""))],
    ids=["newline-user", "colon-user", "newline-hash", "space-user", "wildcard-user",
         "space-topic", "hash-not-last", "plus-in-level", "empty-topic"],
)
def test_what_would_split_a_broker_file_line_is_refused(render, args) -> None:
    with pytest.raises(RegistryError):
        render(*args)


def test_a_bad_name_that_slipped_past_the_grammar_is_not_written() -> None:
    device = Device("aq-1\ntopic readwrite #", "noise", "north", 1, 1)  # not through parsing
    credentials = {device.id: Credential(device.id, "$7$x", 0)}
    with pytest.raises(RegistryError):
        render_acl_file([device], credentials, [])
    with pytest.raises(DeviceError, match="bad device id"):
        render_password_file([device], credentials, [])
