"""Who is on call now: one entry per on-call schedule of a team."""

from __future__ import annotations

from pydantic import BaseModel, Field

from alerts.decisions.oncall import duty
from alerts.routing import Team


class OnDuty(BaseModel):
    schedule: str = Field(description="the schedule's id in the routing file, e.g. lead")
    member_id: str
    name: str
    email: str | None
    phone: str | None
    override: bool = Field(description="on duty by an override, not by the rotation")


class TeamOnCall(BaseModel):
    team_id: str
    at_ms: int = Field(description="the moment asked about, epoch milliseconds")
    timezone: str = Field(description="the city's zone the rotations hand over in")
    schedules: list[OnDuty]

    @classmethod
    def of(cls, team: Team, at_ms: int, tz: str) -> TeamOnCall:
        found = []
        for schedule in team.oncall:
            now = duty(schedule, at_ms, tz)
            member = team.member(now.member_id)
            found.append(OnDuty(schedule=schedule.id, member_id=member.id, name=member.name,
                                email=member.email, phone=member.phone, override=now.override))
        return cls(team_id=team.id, at_ms=at_ms, timezone=tz, schedules=found)
