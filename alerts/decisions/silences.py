"""Silences: maintenance windows that keep matching alerts from being dispatched.

A silenced alert is still recorded; only its notifications are held back. A silence matches
an alert when every one of its matchers does. As in Alertmanager, a matcher names a field
(device, device type, grid cell, district, rule, category or severity), an operator (`=`, `!=`,
`=~`, `!~`) and a value; regular expressions match the whole value (Python `re`, at most
`MAX_PATTERN` characters), and a field the alert lacks reads as the empty string. A silence
needs one matcher that does not match the empty string, so it cannot mute everything by accident.
It is one-off (active from `starts_ms` to `ends_ms`) or recurring weekly inside that validity
span, e.g. every Sunday 02:00-04:00 wall-clock time in the city's time zone. Wall-clock windows
follow the zone's DST rules: on a spring-forward night a 02:00-04:00 window is one hour long, on
a fall-back night three.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.errors import SilenceError
from alerts.model import Alert

MAX_PATTERN = 256
"""The longest regular expression a matcher accepts."""


class Field(StrEnum):
    DEVICE = "device"
    DEVICE_TYPE = "device_type"
    GRID = "grid"
    DISTRICT = "district"
    RULE = "rule"
    CATEGORY = "category"
    SEVERITY = "severity"


class Op(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


def _label(alert: Alert, name: Field, device_types: Mapping[str, str]) -> str:
    """The alert's value for `name`; a missing one is the empty string."""
    match name:
        case Field.DEVICE:
            return alert.device_id or ""
        case Field.DEVICE_TYPE:
            return device_types.get(alert.device_id or "", "")
        case Field.GRID:
            return alert.grid or ""
        case Field.DISTRICT:
            return alert.district or ""
        case Field.RULE:
            return alert.rule_id
        case Field.CATEGORY:
            return alert.category.value
        case Field.SEVERITY:
            return alert.severity.name.lower()


@dataclass(frozen=True)
class Matcher:
    field: Field
    value: str
    op: Op = Op.EQUAL
    _pattern: re.Pattern[str] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.op not in (Op.REGEX, Op.NOT_REGEX):
            return
        if len(self.value) > MAX_PATTERN:
            raise SilenceError(
                f"{self.field} {self.op} pattern longer than {MAX_PATTERN} characters"
            )
        try:
            pattern = re.compile(self.value)
        except re.error as exc:
            raise SilenceError(
                f"{self.field} {self.op} {self.value!r}: invalid regular expression: {exc}"
            ) from None
        object.__setattr__(self, "_pattern", pattern)

    def accepts(self, label: str) -> bool:
        """Whether a field value of `label` satisfies this matcher."""
        if self._pattern is None:
            return (label == self.value) is (self.op is Op.EQUAL)
        return (self._pattern.fullmatch(label) is not None) is (self.op is Op.REGEX)

    def matches(self, alert: Alert, device_types: Mapping[str, str]) -> bool:
        return self.accepts(_label(alert, self.field, device_types))


@dataclass(frozen=True)
class Weekly:
    """Every `weekdays` (Monday = 0) from `start` to `end` local time in `tz` (an IANA name).

    `end` before or equal to `start` means the window runs past midnight into the next day.
    """

    weekdays: frozenset[int]
    start: time
    end: time
    tz: str

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise SilenceError(f"weekdays must be a non-empty subset of 0..6, got {self.weekdays}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SilenceError(f"unknown time zone {self.tz!r}") from exc

    def covers(self, now_ms: int) -> bool:
        zone = ZoneInfo(self.tz)
        today = datetime.fromtimestamp(now_ms / 1000, zone).date()
        # a window that crosses midnight may have started yesterday
        windows = [
            self._window_ms(day, zone)
            for day in (today - timedelta(days=1), today)
            if day.weekday() in self.weekdays
        ]
        return any(start <= now_ms < end for start, end in windows)

    def _window_ms(self, day: date, zone: ZoneInfo) -> tuple[int, int]:
        end_day = day if self.end > self.start else day + timedelta(days=1)
        start = datetime.combine(day, self.start, zone)
        end = datetime.combine(end_day, self.end, zone)
        return round(start.timestamp() * 1000), round(end.timestamp() * 1000)


@dataclass(frozen=True)
class Silence:
    """A maintenance window; `ends_ms=None` means until removed (only sensible with `weekly`)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_ms: int
    ends_ms: int | None
    author: str
    reason: str
    weekly: Weekly | None = None

    def __post_init__(self) -> None:
        if not self.matchers:
            raise SilenceError(f"silence {self.id}: needs at least one matcher")
        if all(m.accepts("") for m in self.matchers):
            raise SilenceError(
                f"silence {self.id}: needs at least one matcher that does not match an empty value"
            )
        if self.ends_ms is not None and self.ends_ms <= self.starts_ms:
            raise SilenceError(f"silence {self.id}: ends before it starts")
        if self.ends_ms is None and self.weekly is None:
            raise SilenceError(f"silence {self.id}: a one-off silence needs an end")
        if not self.author.strip():
            raise SilenceError(f"silence {self.id}: needs an author")

    def active_at(self, now_ms: int) -> bool:
        if now_ms < self.starts_ms or (self.ends_ms is not None and now_ms >= self.ends_ms):
            return False
        return self.weekly is None or self.weekly.covers(now_ms)

    def matches(self, alert: Alert, device_types: Mapping[str, str]) -> bool:
        """Whether every matcher holds; `device_types` maps device ids to their types."""
        return all(m.matches(alert, device_types) for m in self.matchers)

    def expired_at(self, now_ms: int) -> bool:
        return self.ends_ms is not None and now_ms >= self.ends_ms


def muting_silence(
    alert: Alert, silences: Iterable[Silence], now_ms: int, device_types: Mapping[str, str]
) -> Silence | None:
    """The first silence that mutes `alert` at `now_ms`, or None."""
    for silence in silences:
        if silence.active_at(now_ms) and silence.matches(alert, device_types):
            return silence
    return None
