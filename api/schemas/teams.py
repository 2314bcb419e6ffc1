"""Teams of the routing file as admins manage them: members, channels, on-call schedules.

A team body is checked by the routing file's own loader once it is in the new file (so a bad
phone number is refused with the line, column and field path `urbanwatch routing check` would
print), not field by field here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from alerts.routing import Handler, Team
from alerts.schedules import Schedule
from api.clock import Instant, iso_time
from api.schemas.common import StrictRequestBody
from api.schemas.problems import ProblemBase
from api.schemas.routing import ChannelPublic

TIMES = "in the routing file's way: RFC 3339 with an offset, or local city time without one"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelBody(_Body):
    type: Literal["mqtt", "webhook"]
    topic: str | None = Field(None, description="mqtt: a topic under dispatch/ (default "
                              "dispatch/{team})")
    url: str | None = Field(None, description="webhook: https:// URL")
    secret_env: str | None = Field(None, description="webhook: the HMAC secret's variable")
    cap: bool | None = Field(None, description="webhook: send CAP 1.2 XML")
    allow_http: bool | None = Field(None, description="webhook: allow a plain http:// URL")


class MemberBody(_Body):
    id: str = Field(examples=["li.wei"])
    name: str = Field(examples=["Li Wei"])
    email: str | None = Field(None, examples=["li.wei@gas.example.org"])
    phone: str | None = Field(None, description="E.164", examples=["+8613800000001"])


class RotationBody(_Body):
    members: list[str]
    handoff_day: str | None = Field(None, description="monday … sunday (default monday)")
    handoff_time: str | None = Field(None, description="HH:MM, city time (default 09:00)")
    length_weeks: int | None = Field(None, description="default 1")
    start: str | None = Field(None, description="YYYY-MM-DD (default 2024-01-01)")


class OverrideBody(_Body):
    member: str
    start: str = Field(description=TIMES)
    end: str = Field(description=f"exclusive; {TIMES}")


class ScheduleBody(_Body):
    id: str = Field(examples=["lead"])
    rotation: RotationBody
    overrides: list[OverrideBody] = []


class TeamPut(StrictRequestBody):
    """A whole team: what the routing file will hold for it under `handler`."""

    handler: str = Field(description="the handler (department) the team belongs to",
                         examples=["gas-company"])
    name: str = Field(examples=["Gas emergency repair team"])
    channels: list[ChannelBody] = Field(default_factory=list)
    members: list[MemberBody] = Field(default_factory=list)
    oncall: list[ScheduleBody] = Field(default_factory=list)

    def team_data(self, team_id: str) -> dict[str, Any]:
        """The team as routing-file data: unset and empty entries left out."""
        data = self.model_dump(exclude={"handler"}, exclude_none=True)
        return {"id": team_id, **{k: v for k, v in data.items() if v != []}}


class Cover(StrictRequestBody):
    """`member` is on duty for the schedule from `start` until `end` (exclusive)."""

    member: str = Field(examples=["zhao.lei"])
    start: Instant
    end: Instant


class OverridePublic(BaseModel):
    index: int = Field(description="its place in the schedule's overrides (to DELETE it)")
    member: str
    start: str = Field(description="RFC 3339 in UTC")
    end: str = Field(description="RFC 3339 in UTC, exclusive")


class RotationPublic(BaseModel):
    members: list[str]
    handoff_day: str
    handoff_time: str = Field(description="HH:MM, the city's time")
    length_weeks: int
    start: str = Field(description="YYYY-MM-DD")


class SchedulePublic(BaseModel):
    id: str
    rotation: RotationPublic
    overrides: list[OverridePublic]

    @classmethod
    def of(cls, schedule: Schedule, tz: str) -> SchedulePublic:
        r = schedule.rotation
        return cls(
            id=schedule.id,
            rotation=RotationPublic(
                members=list(r.members), handoff_day=r.handoff_day.name,
                handoff_time=r.handoff_time.strftime("%H:%M"), length_weeks=r.length_weeks,
                start=r.start.isoformat(),
            ),
            overrides=[OverridePublic(index=i, member=o.member, start=_iso(o.start, tz),
                                      end=_iso(o.end, tz))
                       for i, o in enumerate(schedule.overrides)],
        )


class MemberPublic(BaseModel):
    id: str
    name: str
    email: str | None = Field(description="shown to admins only")
    phone: str | None = Field(description="shown to admins only")


class TeamDetail(BaseModel):
    """A team with its handler, channels, members and on-call schedules."""

    id: str
    handler: str
    name: str
    channels: list[ChannelPublic]
    members: list[MemberPublic]
    oncall: list[SchedulePublic]

    @classmethod
    def of(cls, handler: Handler, team: Team, tz: str) -> TeamDetail:
        return cls(
            id=team.id, handler=handler.id, name=team.name,
            channels=[ChannelPublic.of(c) for c in team.channels],
            members=[MemberPublic(id=m.id, name=m.name, email=m.email, phone=m.phone)
                     for m in team.members],
            oncall=[SchedulePublic.of(s, tz) for s in team.oncall],
        )


class TeamProblem(ProblemBase):
    """A 422: the routing the change would make is invalid (`problems`, each with its line,
    column and field path in the new file), or the request itself is (FastAPI's list)."""

    detail: str | list[dict[str, Any]]
    source: str | None = Field(None, description="the routing file")
    problems: list[str] | None = Field(None, description="each as `line L, column C, path: "
                                       "reason`")


def _iso(moment: datetime, tz: str) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(tz))
    return iso_time(round(aware.timestamp() * 1000))

