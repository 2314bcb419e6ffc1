"""Device MQTT credentials and the Mosquitto files that enforce them (pure functions).

A device connects with its id as username and a generated password that is shown
once; only a Mosquitto `$7$` hash (PBKDF2-SHA512, as `mosquitto_passwd` writes it)
is kept. `render_password_file` / `render_acl_file` turn (devices, credentials,
platform users) into the broker's `password_file` and `acl_file`, each line written by
`password_line`, `user_line` or `topic_line`, which refuse anything that could split a line
or a token (even a name that slipped past `devices.names`):

- a device may write only `{prefix}city/{district}/{id}/#`, a gateway also its
  children's topics; retired devices and revoked credentials get no entry;
- each platform user gets exactly the `topic` lines it is given.

No `pattern` lines: they would apply to the platform users too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from devices.errors import InvalidDeviceError, RegistryError
from devices.names import Kind, check
from devices.registry import Device, DeviceStatus

HASH_ITERATIONS = 101  # mosquitto_passwd's default for $7$
PLATFORM_USER_PREFIX = "urbanwatch."  # the platform's own broker users; no device id starts so
_SALT_BYTES = 12


@dataclass(frozen=True)
class Credential:
    """A device's stored MQTT credential (never the password itself)."""

    device_id: str
    password_hash: str
    created_ms: int
    revoked_ms: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_ms is None


@dataclass(frozen=True)
class PlatformUser:
    """One of the platform's own broker users and what it may do."""

    username: str
    password_hash: str
    read: tuple[str, ...] = ()  # topic filters, before the prefix
    write: tuple[str, ...] = ()


def generate_password() -> str:
    """A fresh random password (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = HASH_ITERATIONS) -> str:
    """The Mosquitto `$7$` hash: `$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        _, kind, iterations, salt, digest = encoded.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return kind == "7" and hmac.compare_digest(actual, expected)


def username_problem(device_id: str) -> str | None:
    """Why a device id (of the `devices.names` grammar) cannot be its MQTT username."""
    if device_id.startswith(PLATFORM_USER_PREFIX):
        return (f"{device_id!r} cannot be a device's MQTT username "
                f"({PLATFORM_USER_PREFIX}* is reserved)")
    return None


def check_username(device_id: str) -> str:
    problem = username_problem(check(Kind.DEVICE, device_id))
    if problem is not None:
        raise InvalidDeviceError(problem)
    return device_id


def render_password_file(
    devices: Iterable[Device], credentials: Mapping[str, Credential],
    platform: Iterable[PlatformUser],
) -> str:
    """`user:hash` lines: the platform users, then every device allowed to connect."""
    lines = [password_line(u.username, u.password_hash) for u in platform]
    for device in _admitted(devices, credentials):
        lines.append(password_line(check_username(device.id),
                                   credentials[device.id].password_hash))
    return "".join(lines)


def render_acl_file(
    devices: Iterable[Device], credentials: Mapping[str, Credential],
    platform: Iterable[PlatformUser], prefix: str = "",
) -> str:
    """Explicit per-user `topic` lines; anything not listed is denied. A device may write its
    own `data` and `batch` topics only (a gateway also its children's `data`)."""
    platform = list(platform)
    reserved = {u.username for u in platform}
    devices = list(devices)
    children: dict[str, list[Device]] = {}
    for device in devices:
        if device.gateway and device.status != DeviceStatus.RETIRED:
            children.setdefault(device.gateway, []).append(device)
    blocks = []
    for user in platform:
        rules = [topic_line("read", prefix + t) for t in user.read]
        rules += [topic_line("write", prefix + t) for t in user.write]
        blocks.append([user_line(user.username), *rules])
    for device in _admitted(devices, credentials):
        if device.id in reserved:
            raise RegistryError(f"device id {device.id!r} is a platform MQTT user name")
        own = [f"{device_topic(device)}/{kind}" for kind in ("data", "batch")]
        own += [f"{device_topic(child)}/data" for child in children.get(device.id, [])]
        rules = [topic_line("write", f"{prefix}{topic}") for topic in own]
        blocks.append([user_line(device.id), *rules])
    return "\n".join("".join(block) for block in blocks)


def password_line(username: str, password_hash: str) -> str:
    """One ``user:hash`` line of the password file; RegistryError if either could split it."""
    _token(username, "user name", also=":+#")
    return f"{username}:{_token(password_hash, 'password hash')}\n"


def user_line(username: str) -> str:
    """The ``user <name>`` line that starts a user's block of the ACL file."""
    return f"user {_token(username, 'user name', also='+#')}\n"


def topic_line(access: Literal["read", "write"], topic: str) -> str:
    """One ``topic <access> <filter>`` line of the ACL file; wildcards only as whole levels."""
    levels = _token(topic, "topic filter").split("/")
    if any(("+" in lv and lv != "+") or ("#" in lv and lv != "#") for lv in levels) or (
        "#" in levels[:-1]
    ):
        raise RegistryError(f"{topic!r} is not an MQTT topic filter (+ and # are whole levels, "
                            "# only the last)")
    return f"topic {access} {topic}\n"


def _token(text: str, what: str, also: str = "") -> str:
    """`text` if it is one token of a Mosquitto file line: not empty, no whitespace, control,
    separator or unassigned character (which could end the line or the token), none of `also`."""
    bad = next((c for c in text if c in also or unicodedata.category(c)[0] in "CZ"), None)
    if not text or bad is not None:
        raise RegistryError(f"{what} {text!r} cannot be written into the broker's files"
                            + (f" ({bad!r} is not allowed)" if bad is not None else ""))
    return text


def device_topic(device: Device) -> str:
    """The topic root a device publishes under (without the prefix)."""
    return f"city/{device.district}/{device.id}"


def _admitted(devices: Iterable[Device], credentials: Mapping[str, Credential]) -> list[Device]:
    """Devices that may log in: not retired and holding an active credential."""
    return [
        d for d in devices
        if d.status != DeviceStatus.RETIRED and d.id in credentials and credentials[d.id].active
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
