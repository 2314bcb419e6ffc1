"""Who is on duty: a schedule's rotation and overrides, at a moment, in the city's time zone.

Pure. Turns are counted in the city's wall-clock time, so a handoff at 09:00 stays at 09:00
local across daylight-saving changes (a turn spanning one is an hour shorter or longer).

>>> from datetime import date
>>> from alerts.schedules import Rotation, Schedule
>>> s = Schedule(id="lead", rotation=Rotation(members=("li", "wang"), start=date(2026, 1, 5)))
>>> on_duty(s, 1767618000000, "Asia/Shanghai")  # 2026-01-05 21:00 in Shanghai, a Monday
'li'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.schedules import Override, Rotation, Schedule


@dataclass(frozen=True)
class Duty:
    """Who holds the schedule at the moment asked, and whether by an override."""

    member_id: str
    override: bool = False


def first_handoff(rotation: Rotation) -> datetime:
    """The local (naive) moment the first member's first turn begins."""
    ahead = (rotation.handoff_day - rotation.start.weekday()) % 7
    return datetime.combine(rotation.start + timedelta(days=ahead), rotation.handoff_time)


def turn(rotation: Rotation, local: datetime) -> str:
    """The member whose turn it is at the naive local time `local` (also before the start:
    the rotation runs backwards the same way)."""
    elapsed = local - first_handoff(rotation)
    n = elapsed // timedelta(weeks=rotation.length_weeks)
    return rotation.members[n % len(rotation.members)]


def _covers(override: Override, moment: datetime, local: datetime) -> bool:
    if override.start.tzinfo is not None:
        return override.start <= moment < override.end
    return override.start <= local < override.end


def duty(schedule: Schedule, now_ms: int, tz: str) -> Duty:
    """Who is on duty for `schedule` at `now_ms`."""
    moment = datetime.fromtimestamp(now_ms / 1000, UTC)
    local = moment.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    for override in reversed(schedule.overrides):  # the last one listed wins
        if _covers(override, moment, local):
            return Duty(override.member, override=True)
    return Duty(turn(schedule.rotation, local))


def on_duty(schedule: Schedule, now_ms: int, tz: str) -> str:
    """The member id on duty for `schedule` at `now_ms` (the city's zone `tz`)."""
    return duty(schedule, now_ms, tz).member_id

