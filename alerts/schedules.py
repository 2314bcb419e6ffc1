"""Team members and their on-call schedules, as the routing file declares them.

A team lists its `members` with the contacts the channels use (e-mail, phone in E.164). Each
on-call schedule (`oncall`, e.g. ``lead`` or ``chief``) is a weekly rotation through some of
them, handing over on one weekday at one local time of the city, every `length_weeks` weeks,
plus `overrides` (member X covers from … to …; the last one listed wins where they overlap).
Who is on duty at a moment is `alerts.decisions.oncall.on_duty`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from enum import IntEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.names import MemberId, ScheduleId

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"\+[1-9][0-9]{6,14}")  # E.164: what SMS and voice gateways take


def _email(raw: str) -> str:
    if len(raw) > 254 or not EMAIL.fullmatch(raw):
        raise ValueError(f"{raw!r} is not an e-mail address like name@example.org")
    return raw


def _phone(raw: str) -> str:
    if not PHONE.fullmatch(raw):
        raise ValueError(
            f"{raw!r} is not a phone number in E.164 form: + country code and number, digits "
            "only, e.g. \"+8613800000000\" (quoted, or YAML reads it as a number)"
        )
    return raw


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Weekday(IntEnum):
    monday = 0
    tuesday = 1
    wednesday = 2
    thursday = 3
    friday = 4
    saturday = 5
    sunday = 6


class Member(_Model):
    """A person of a team; `email` and `phone` are where steps reach them."""

    id: MemberId
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
    email: Annotated[str, AfterValidator(_email)] | None = None
    phone: Annotated[str, AfterValidator(_phone)] | None = None


class Rotation(_Model):
    """`members` take turns; the first one's turn starts on the first `handoff_day` on or
    after `start`, at `handoff_time` (the city's local time), and lasts `length_weeks`."""

    members: tuple[MemberId, ...] = Field(min_length=1)
    handoff_day: Weekday = Weekday.monday
    handoff_time: time = time(9, 0)
    length_weeks: int = Field(1, ge=1, le=52)
    start: date = date(2024, 1, 1)

    @field_validator("handoff_day", mode="before")
    @classmethod
    def _day_name(cls, raw: object) -> object:
        if isinstance(raw, str):
            try:
                return Weekday[raw.lower()]
            except KeyError:
                days = ", ".join(d.name for d in Weekday)
                raise ValueError(f"unknown weekday {raw!r}; expected one of {days}") from None
        return raw

    @field_validator("handoff_time", mode="before")
    @classmethod
    def _hh_mm(cls, raw: object) -> object:
        if isinstance(raw, int):  # YAML 1.1 reads an unquoted 09:00 as 540 (sexagesimal)
            return time(*divmod(raw, 60)) if 0 <= raw < 24 * 60 else raw
        return raw


class Override(_Model):
    """`member` is on duty from `start` to `end` (local city time, unless an offset is
    given) instead of whoever the rotation says."""

    member: MemberId
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("give both start and end with an offset, or neither")
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self


class Schedule(_Model):
    id: ScheduleId
    rotation: Rotation
    overrides: tuple[Override, ...] = ()

    @property
    def member_ids(self) -> tuple[str, ...]:
        return (*self.rotation.members, *(o.member for o in self.overrides))
