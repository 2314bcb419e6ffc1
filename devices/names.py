"""The one grammar of the identifiers that reach a file, a topic or a query.

Device, district, grid-cell, department (routing handler), team, escalation-policy, rule,
silence, team-member, on-call-schedule and gateway ids are written into MQTT topics
(``city/{district}/{device}/data``, ``dispatch/{team}``), Mosquitto's password and ACL files,
InfluxDB tags, CAP XML, outbox keys and log
lines. Each is ASCII letters and digits plus ``.``, ``_`` and ``-``, starting with a letter
or digit, and no longer than its kind allows: no whitespace or control character that
could split a line, no ``/``, ``+`` or ``#`` that would change a topic, no ``:`` that
would end a password-file user name.

Districts are ASCII on purpose (``haidian``, not 海淀区): an id travels through topics,
tags and file names, where one spelling per place matters; the display name of an area
(`devices.geo.Area.name`) is free text and may be Chinese. A user name is not one of these
ids: it is a person's name (printable text, checked by the API's user store) and only ever
reaches SQL parameters, tokens and escaped log lines.

`check(kind, value)` is the check; the annotated types (`DeviceId`, `DistrictId`, ...) run
it inside pydantic models, so the API, the CLI (through `devices.provisioning`), the device
and area files, the routing file and the rule file all refuse the same names for the same
reason.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import partial
from typing import Annotated

from pydantic import AfterValidator

from devices.errors import InvalidNameError


class Kind(StrEnum):
    DEVICE = "device"
    DISTRICT = "district"
    GRID = "grid cell"
    DEPARTMENT = "department"
    TEAM = "team"
    POLICY = "escalation policy"
    RULE = "rule"
    SILENCE = "silence"
    MEMBER = "team member"
    SCHEDULE = "on-call schedule"
    GATEWAY = "gateway"


MAX_LENGTH: dict[Kind, int] = {
    Kind.DEVICE: 64,
    Kind.DISTRICT: 64,
    Kind.GRID: 64,
    Kind.DEPARTMENT: 64,
    Kind.TEAM: 64,
    Kind.POLICY: 64,
    Kind.RULE: 128,
    Kind.SILENCE: 64,
    Kind.MEMBER: 64,
    Kind.SCHEDULE: 64,
    Kind.GATEWAY: 24,  # outbox rows name their channel `gateway.{id}` in 32 characters
}
ALLOWED = "ASCII letters, digits and . _ -"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9._-]")


def check(kind: Kind, value: str) -> str:
    """`value` if it is a good `kind` id.

    Raises:
        InvalidNameError: saying what is wrong with it (also a ValueError, for pydantic).
    """
    if _NAME.fullmatch(value) and len(value) <= MAX_LENGTH[kind]:
        return value
    raise InvalidNameError(kind.value, value, _reason(kind, value))


def _reason(kind: Kind, value: str) -> str:
    if not value:
        return "it is empty"
    if len(value) > MAX_LENGTH[kind]:
        return f"it is longer than {MAX_LENGTH[kind]} characters"
    bad = _BAD_CHAR.search(value)
    if bad is not None:
        return f"{bad.group()!r} at position {bad.start()} is not allowed (use {ALLOWED})"
    return "it must start with a letter or a digit"


def _annotated(kind: Kind) -> AfterValidator:
    return AfterValidator(partial(check, kind))


DeviceId = Annotated[str, _annotated(Kind.DEVICE)]
DistrictId = Annotated[str, _annotated(Kind.DISTRICT)]
GridId = Annotated[str, _annotated(Kind.GRID)]
DepartmentId = Annotated[str, _annotated(Kind.DEPARTMENT)]
TeamId = Annotated[str, _annotated(Kind.TEAM)]
PolicyId = Annotated[str, _annotated(Kind.POLICY)]
RuleId = Annotated[str, _annotated(Kind.RULE)]
SilenceId = Annotated[str, _annotated(Kind.SILENCE)]
MemberId = Annotated[str, _annotated(Kind.MEMBER)]
ScheduleId = Annotated[str, _annotated(Kind.SCHEDULE)]
GatewayId = Annotated[str, _annotated(Kind.GATEWAY)]
