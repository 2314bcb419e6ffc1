"""Silences: maintenance windows that keep matching alerts from being dispatched."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from alerts.decisions.silences import Matcher, Silence, Weekly
from api.deps import AlertServiceDep, Caller, CityZoneDep, require
from api.routes.incidents import INVALID
from api.schemas.problems import Problem
from api.schemas.silences import SilenceCreate, SilencePublic
from api.security.principal import Principal, Role
from devices.clock import now_ms
from devices.names import SilenceId

router = APIRouter(prefix="/api/v1/silences", tags=["silences"])
Writer = Annotated[Principal, Depends(require(Role.admin, Role.operator))]


@router.get("", summary="List silences; expired ones only on request")
async def list_silences(
    _caller: Caller, alerts: AlertServiceDep, include_expired: bool = False
) -> list[SilencePublic]:
    found = await alerts.silences(include_expired=include_expired)
    return [SilencePublic.of(s) for s in found]


@router.post(
    "",
    summary="Create a one-off or weekly silence; matchers as Alertmanager's (=, !=, =~, !~)",
    status_code=status.HTTP_201_CREATED,
    responses=INVALID,
)
async def create_silence(
    body: SilenceCreate, caller: Writer, alerts: AlertServiceDep, zone: CityZoneDep
) -> SilencePublic:
    weekly = None
    if body.weekly is not None:
        w = body.weekly
        weekly = Weekly(frozenset(w.weekdays), w.start, w.end, w.tz or zone)
    silence = Silence(
        id=f"sil-{uuid.uuid4().hex[:16]}",
        matchers=tuple(Matcher(m.field, m.value, m.op) for m in body.matchers),
        starts_ms=body.starts_at,
        ends_ms=body.ends_at,
        author=caller.subject,
        reason=body.reason,
        weekly=weekly,
    )
    return SilencePublic.of(await alerts.create_silence(silence, now_ms()))


@router.post(
    "/{silence_id}/expire",
    summary="Expire a silence now",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem, "description": "no unexpired silence with that id"}},
)
async def expire_silence(silence_id: SilenceId, caller: Writer, alerts: AlertServiceDep) -> None:
    await alerts.expire_silence(silence_id, caller.subject, now_ms())
