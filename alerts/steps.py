"""Policy steps that page people, and the SMS/voice gateways they page through.

A policy's `steps` run while an incident stays unacknowledged: step n fires once, `after_s`
seconds after the dispatch, and pages each of its `notify` entries: over ``email`` or a
`Gateway` of the routing file (``sms``, ``voice``…), to whoever is on duty for an on-call
schedule. ``to: lead`` is the schedule ``lead`` of the team holding the incident at that moment;
``to: ecc-duty/chief`` names the team. The team's own channels (dashboard, MQTT, webhooks) get
the dispatch at 0 as with any policy; steps add the people.

A gateway is a webhook (signed the Standard Webhooks way, retried through the outbox) whose
body is a template (`alerts.templates`); a step may give its own `body`.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from alerts import templates
from devices.names import GatewayId, Kind, ScheduleId, TeamId, check

EMAIL = "email"
MAX_DELAY_S = 7 * 24 * 3600


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _template(raw: Any) -> Any:
    try:
        json.dumps(raw)
    except (TypeError, ValueError):
        raise ValueError("a body template holds only JSON values (quote dates and times)") from None
    bad = templates.unknown(raw)
    if bad:
        known = ", ".join(templates.FIELDS)
        raise ValueError(f"unknown placeholder(s) {', '.join(bad)}; known: {known}")
    return raw


BodyTemplate = Annotated[Any, AfterValidator(_template)]


class Gateway(_Model):
    """Where an SMS or voice gateway takes requests, and the body it expects."""

    id: GatewayId
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    secret_env: str  # name of the environment variable holding the signing secret
    body: BodyTemplate
    allow_http: bool = False

    @field_validator("id")
    @classmethod
    def _not_email(cls, raw: str) -> str:
        if raw == EMAIL:
            raise ValueError("'email' is the e-mail channel; name the gateway otherwise")
        return raw

    @model_validator(mode="after")
    def _https_unless_allowed(self) -> Gateway:
        if self.url.startswith("http://") and not self.allow_http:
            raise ValueError(
                "gateway URL is plain http://: phone numbers and alerts would cross the network "
                "readable by anyone; use https:// or add allow_http: true to this gateway"
            )
        return self


def _oncall_ref(raw: str) -> str:
    team, slash, schedule = raw.rpartition("/")
    if slash:
        check(Kind.TEAM, team)
    check(Kind.SCHEDULE, schedule)
    return raw


class Page(_Model):
    """Page whoever is on duty for schedule `to` over `channel` (``email`` or a gateway id)."""

    channel: Annotated[str, Field(min_length=1, max_length=64)]
    to: Annotated[str, AfterValidator(_oncall_ref)]
    body: BodyTemplate | None = None  # a gateway's body for this step only

    @property
    def schedule(self) -> tuple[TeamId | None, ScheduleId]:
        """(team, schedule) of `to`; team None: the team holding the incident."""
        team, slash, schedule = self.to.rpartition("/")
        return (team if slash else None), schedule

    @model_validator(mode="after")
    def _body_for_gateways(self) -> Page:
        if self.body is not None and self.channel == EMAIL:
            raise ValueError("an e-mail has no body template; body is for gateways")
        return self


class Step(_Model):
    after_s: int = Field(ge=0, le=MAX_DELAY_S)
    notify: tuple[Page, ...] = Field(min_length=1)


def ordered(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """`steps` if their delays strictly increase (each fires once, in order)."""
    for before, after in pairwise(steps):
        if after.after_s <= before.after_s:
            raise ValueError(
                f"step delays must increase: after_s {after.after_s} follows {before.after_s}"
            )
    return steps
