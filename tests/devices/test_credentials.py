"""Rendering Mosquitto's password and ACL files from devices, credentials and platform users."""

from __future__ import annotations

import pytest

from devices.credentials import (
    Credential,
    PlatformUser,
    hash_password,
    render_acl_file,
    render_password_file,
    username_problem,
    verify_password,
)
from devices.errors import RegistryError
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
    assert "no ':'" in (username_problem("aq:1") or "")
    assert username_problem("aq-1") is None


def test_hashes_are_salted_and_verify() -> None:
    first, second = hash_password("pw"), hash_password("pw")

    assert first != second and first.startswith("$7$101$")
    assert verify_password("pw", first) and not verify_password("pW", first)
    assert not verify_password("pw", "not a hash")
