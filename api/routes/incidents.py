"""Incidents: what responders are sent to, followed on a timeline until closed.

Responders see and act only on their own teams' incidents; another team's incident is 404 to
them, so its existence does not leak. The actor on the timeline is the caller's subject.
What the service refuses is answered by `api.problems`: unknown 404, a change the state does
not allow 409, an unknown team 422.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from alerts.decisions.notify import CAP_XML
from alerts.errors import UnknownIncidentError
from alerts.model import Incident, IncidentState
from alerts.service import AlertService, IncidentQuery
from api.clock import Instant
from api.cursor import Cursor, page_of, start_of
from api.deps import AlertServiceDep, BoundsDep, Caller, PhotosDep, require
from api.photos import PHOTO_TYPES, photo_type
from api.query import TIME, Offset, PageSize, alias_of, time_range
from api.schemas.common import SeverityName
from api.schemas.incidents import (
    IncidentDetail,
    IncidentPage,
    IncidentPublic,
    NoteRequest,
    ReassignRequest,
    TransitionRequest,
)
from api.schemas.problems import Invalid, Problem
from api.security.principal import Principal, Role
from devices.clock import now_ms
from rules.detection import Category, Severity

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
Actor = Annotated[Principal, Depends(require(Role.admin, Role.operator, Role.responder))]
Dispatcher = Annotated[Principal, Depends(require(Role.admin, Role.operator))]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such incident (or not one of your teams')"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Invalid, "description": "invalid request"}
}
CHANGES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"model": Problem, "description": "the incident's state does not allow this change"},
}


async def visible_incident(alerts: AlertService, caller: Principal, incident_id: str) -> Incident:
    """The incident if the caller may see it; another team's is unknown to them."""
    incident = await alerts.incident(incident_id)
    if not caller.sees_team(incident.team_id):
        raise UnknownIncidentError(incident_id)
    return incident


@router.get(
    "", summary="List incidents with filters and paging, newest first",
    responses={422: {"model": Invalid, "description": "bad filter, time range or cursor"}},
)
async def list_incidents(
    caller: Caller,
    alerts: AlertServiceDep,
    state: Annotated[list[IncidentState] | None, Query(description="one or more states")] = None,
    severity: SeverityName | None = None,
    category: Category | None = None,
    district: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=64, description="team id")] = None,
    since: Annotated[Instant | None, Query(description=f"opened at or after ({TIME})")] = None,
    until: Annotated[Instant | None, Query(description=f"opened before ({TIME})")] = None,
    opened_from_ms: Annotated[Instant | None, alias_of("since")] = None,
    opened_to_ms: Annotated[Instant | None, alias_of("until")] = None,
    limit: PageSize = 100,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> IncidentPage:
    after = start_of("incidents", cursor, offset, (int, str))
    since_ms, until_ms = time_range(("since", since, "opened_from_ms", opened_from_ms),
                                    ("until", until, "opened_to_ms", opened_to_ms))
    query = IncidentQuery(
        states=frozenset(state or ()),
        severity=None if severity is None else Severity.parse(severity),
        category=category,
        district=district,
        team_id=team,
        opened_from_ms=since_ms,
        opened_to_ms=until_ms,
        visible_teams=caller.visible_teams,
        limit=limit + 1,
        offset=offset,
        after=after,
    )
    found, total = await alerts.find_incidents(query)
    page, next_cursor = page_of("incidents", found, limit, lambda i: (i.opened_ms, i.id))
    return IncidentPage(items=[IncidentPublic.of(i) for i in page], total=total, limit=limit,
                        offset=offset, next_cursor=next_cursor)


@router.get("/{incident_id}", summary="One incident with its timeline", responses=NOT_FOUND)
async def get_incident(incident_id: str, caller: Caller, alerts: AlertServiceDep) -> IncidentDetail:
    return IncidentDetail.of(await visible_incident(alerts, caller, incident_id))


@router.get(
    "/{incident_id}/cap",
    summary="The incident as a CAP 1.2 message: the Alert, or an Update/Cancel referencing it",
    response_class=Response,
    responses={
        200: {"content": {CAP_XML: {"schema": {"type": "string"}}}, "description": "CAP 1.2"},
        **NOT_FOUND,
        409: {"model": Problem, "description": "none of its devices has a known location"},
    },
)
async def get_incident_cap(incident_id: str, caller: Caller, alerts: AlertServiceDep) -> Response:
    incident = await visible_incident(alerts, caller, incident_id)
    # sent at its last change: the same version of a warning is the same CAP message
    xml = alerts.cap(incident, incident.updated_ms)
    if xml is None:
        raise HTTPException(409, f"incident {incident_id}: no located device, CAP needs an area")
    return Response(xml, media_type=CAP_XML)


@router.post(
    "/{incident_id}/acknowledge",
    summary="Acknowledge an incident: the team has seen it",
    responses=CHANGES,
)
async def acknowledge_incident(
    incident_id: str, caller: Actor, alerts: AlertServiceDep
) -> IncidentDetail:
    await visible_incident(alerts, caller, incident_id)
    return IncidentDetail.of(await alerts.acknowledge(incident_id, caller.subject, now_ms()))


@router.post(
    "/{incident_id}/transition",
    summary="Move an incident on: en route, on scene, resolved, closed or cancelled",
    responses={**CHANGES, **INVALID},
)
async def transition_incident(
    incident_id: str, body: TransitionRequest, caller: Actor, alerts: AlertServiceDep
) -> IncidentDetail:
    await visible_incident(alerts, caller, incident_id)
    to = IncidentState(body.to)
    if to is IncidentState.CANCELLED:
        if not body.detail.strip():
            raise HTTPException(422, "cancelling needs a reason in 'detail'")
        changed = await alerts.cancel(incident_id, caller.subject, now_ms(), body.detail)
    else:
        changed = await alerts.transition(incident_id, to, caller.subject, now_ms(), body.detail)
    return IncidentDetail.of(changed)


@router.post(
    "/{incident_id}/reassign",
    summary="Hand an incident to another team, which is dispatched at once",
    responses={**CHANGES, **INVALID},
)
async def reassign_incident(
    incident_id: str, body: ReassignRequest, caller: Dispatcher, alerts: AlertServiceDep
) -> IncidentDetail:
    await visible_incident(alerts, caller, incident_id)
    changed = alerts.reassign(incident_id, body.team_id, caller.subject, now_ms(), body.reason)
    return IncidentDetail.of(await changed)


@router.post(
    "/{incident_id}/notes",
    summary="Add a note to an incident's timeline",
    responses={**NOT_FOUND,
               409: {"model": Problem, "description": "the incident holds its most notes"}},
)
async def add_incident_note(
    incident_id: str, body: NoteRequest, caller: Actor, alerts: AlertServiceDep,
    bounds: BoundsDep,
) -> IncidentDetail:
    await visible_incident(alerts, caller, incident_id)
    noted = alerts.note(incident_id, caller.subject, now_ms(), body.text,
                        bounds.notes_per_incident)
    return IncidentDetail.of(await noted)



@router.post(
    "/{incident_id}/photos",
    summary="Add a photo from the scene (JPEG, PNG or WebP as the body) to the timeline",
    openapi_extra={"requestBody": {"required": True, "content": {
        media: {"schema": {"type": "string", "format": "binary"}} for media in PHOTO_TYPES
    }}},
    responses={
        **NOT_FOUND,
        413: {"model": Problem, "description": "larger than the photo limit"},
        415: {"model": Problem, "description": "not a JPEG, PNG or WebP image"},
    },
)
async def add_photo(
    incident_id: str, request: Request, caller: Actor, alerts: AlertServiceDep,
    photos: PhotosDep,
) -> IncidentDetail:
    await visible_incident(alerts, caller, incident_id)
    content_type = request.headers.get("content-type", "")
    photo_type(content_type)  # refused before the body is read
    data = await request.body()  # bounded by the body limit (`api.body_limit`)
    name = await anyio.to_thread.run_sync(photos.save, incident_id, data, content_type)
    return IncidentDetail.of(await alerts.add_photo(incident_id, caller.subject, now_ms(), name))


@router.get(
    "/{incident_id}/photos/{name}",
    summary="A photo on the incident's timeline (its name is the timeline entry's detail)",
    response_class=FileResponse,
    responses={200: {"content": {media: {} for media in PHOTO_TYPES},
                     "description": "the photo"}, **NOT_FOUND},
)
async def get_photo(
    incident_id: str, name: str, caller: Caller, alerts: AlertServiceDep, photos: PhotosDep
) -> FileResponse:
    await visible_incident(alerts, caller, incident_id)
    found = photos.find(incident_id, name)
    if found is None:
        raise HTTPException(404, f"incident {incident_id} has no photo {name!r}")
    path, media_type = found
    headers = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=media_type, headers=headers)
