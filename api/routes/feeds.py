"""Feeds: active public warnings as Atom (RFC 4287), each entry carrying its CAP 1.2 alert.

A public warning is an open incident that has not been resolved, of any category but device
faults. The feed needs a login unless `[api] public_warnings_feed` makes it public, as a public
warning feed is meant to be; then it lists every team's public warnings. Entries embed the
CAP message as XML content (when the incident can be located) and link to it, as CAP
aggregators expect.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from lxml import etree

from alerts.decisions.cap import is_public_warning, xml_text
from alerts.decisions.notify import CAP_XML
from alerts.model import Incident
from api.deps import AlertServiceDep, PublicOrCaller
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"])
ATOM = "http://www.w3.org/2005/Atom"
ATOM_XML = "application/atom+xml"


@router.get(
    "/warnings.atom",
    summary="Active public warnings as an Atom feed with CAP 1.2 entries",
    response_class=Response,
    responses={200: {"content": {ATOM_XML: {"schema": {"type": "string"}}}, "description": "Atom"}},
)
async def get_warnings_feed(
    request: Request, caller: PublicOrCaller, alerts: AlertServiceDep
) -> Response:
    now = now_ms()
    warnings = [
        i
        for i in await alerts.incidents(open_only=True)
        if is_public_warning(i) and (caller is None or caller.sees_team(i.team_id))
    ]
    warnings.sort(key=lambda i: (i.updated_ms, i.id), reverse=True)
    base = str(request.base_url).rstrip("/")
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    _add(feed, "id", "urn:urbanwatch:feeds:warnings")
    _add(feed, "title", "urbanwatch: active public warnings")
    _add(feed, "updated", _time(max((i.updated_ms for i in warnings), default=now)))
    _add(_add(feed, "author"), "name", "urbanwatch city operations center")
    _link(feed, "self", f"{base}{request.url.path}", ATOM_XML)
    for incident in warnings:
        # sent at its last change: the same version of a warning is the same CAP message
        _entry(feed, incident, alerts.cap(incident, incident.updated_ms), base)
    body = etree.tostring(feed, xml_declaration=True, encoding="utf-8")
    return Response(body, media_type=ATOM_XML)


def _entry(feed: etree._Element, incident: Incident, cap: bytes | None, base: str) -> None:
    entry = _add(feed, "entry")
    _add(entry, "id", f"urn:urbanwatch:incident:{incident.id}")
    _add(entry, "title", incident.title)
    _add(entry, "updated", _time(incident.updated_ms))
    _add(entry, "published", _time(incident.opened_ms))
    _add(entry, "category").set("term", incident.category.value)
    severity = incident.severity.name.lower()
    areas = ", ".join(incident.districts or incident.grids) or "city"
    _add(entry, "summary", f"{severity} {incident.category.value} warning in {areas}; "
                           f"{incident.state.value.replace('_', ' ')}")  # fmt: skip
    _link(entry, "alternate", f"{base}/api/v1/incidents/{incident.id}/cap", CAP_XML)
    if cap is not None:
        content = _add(entry, "content")
        content.set("type", CAP_XML)
        content.append(etree.fromstring(cap))


def _add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = None if text is None else xml_text(text)  # lxml refuses what XML forbids
    return element


def _link(parent: etree._Element, rel: str, href: str, media_type: str) -> None:
    link = _add(parent, "link")
    link.attrib.update({"rel": rel, "href": xml_text(href), "type": media_type})


def _time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")
