"""Render an incident as an OASIS CAP 1.2 alert message (XML).

Pure: the caller supplies the sending time, time zone, sender and the affected devices'
coordinates. A warning keeps one identifier: its first message (an ``Alert``, sent when the
incident is dispatched) has it, and every later message about it is an ``Update`` (a
``Cancel`` once the incident is cancelled) with its own identifier that references the first.
The area is a circle around the devices (plus a polygon when one is given, e.g.
the district boundary). Date-times carry a ``±hh:mm`` offset; CAP forbids ``Z`` and spells UTC
``-00:00``. Every text goes through `xml_text` (also used by the Atom feed): ElementTree escapes
``<``, ``&`` and ``>`` but writes characters XML 1.0 forbids as they are, giving a document no
parser reads.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.decisions.grouping import EVENT_NAME
from alerts.model import CAP_SEVERITY, LEVEL, Incident, IncidentState
from rules.detection import Category, Severity

NS = "urn:oasis:names:tc:emergency:cap:1.2"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ET.register_namespace("", NS)  # serialise as the default namespace, as CAP feeds do

CAP_CATEGORY: dict[Category, str] = {
    Category.ENVIRONMENT: "Env",
    Category.TRAFFIC: "Transport",
    Category.SAFETY: "Safety",
    Category.FLOOD: "Met",
    Category.FIRE: "Fire",
    Category.INFRASTRUCTURE: "Infra",
    Category.DEVICE: "Other",
}
"""Our categories → CAP ``category`` (domain.md §1b)."""

URGENCY: dict[Severity, str] = {
    Severity.RED: "Immediate",
    Severity.ORANGE: "Immediate",
    Severity.YELLOW: "Expected",
    Severity.BLUE: "Future",
    Severity.INFO: "Future",
}

INSTRUCTION: dict[Category, str] = {
    Category.ENVIRONMENT: "Limit outdoor activity; sensitive groups stay indoors.",
    Category.TRAFFIC: "Avoid the area and follow the traffic police's diversions.",
    Category.SAFETY: "Keep away, do not use open flames or switches; follow responders' orders.",
    Category.FLOOD: "Avoid underpasses and low roads; move vehicles to higher ground.",
    Category.FIRE: "Keep away from the area and keep access roads clear for fire engines.",
    Category.INFRASTRUCTURE: "Keep away from the affected structure until it is inspected.",
    Category.DEVICE: "No public action needed.",
}

ENDED = frozenset({IncidentState.RESOLVED, IncidentState.CLOSED, IncidentState.CANCELLED})


@dataclass(frozen=True)
class CapContext:
    """Who sends, in which time zone; `sender` must not contain spaces, commas, `<` or `&`;
    `web` is the public address with more information (absolute http(s) URL)."""

    sender: str
    tz: str
    sender_name: str = "urbanwatch city operations center"
    status: str = "Actual"
    language: str = "en-US"
    web: str | None = None


@dataclass(frozen=True)
class CapRef:
    """A message another one updates or cancels."""

    identifier: str
    sent_ms: int


def cap_time(ts_ms: int, tz: str) -> str:
    """``2024-05-01T10:00:00+08:00``; UTC is ``-00:00``."""
    text = datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).isoformat(timespec="seconds")
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def identifier(ctx: CapContext, incident: Incident, sent_ms: int) -> str:
    return f"{ctx.sender}.{incident.id}.{sent_ms}".replace(" ", "_")


def warning_ref(ctx: CapContext, incident: Incident) -> CapRef:
    """The first message of the warning: sent when the incident was dispatched (or opened,
    for one not dispatched yet)."""
    first_ms = incident.opened_ms if incident.dispatched_ms is None else incident.dispatched_ms
    return CapRef(identifier(ctx, incident, first_ms), first_ms)


def render_cap(
    incident: Incident,
    ctx: CapContext,
    sent_ms: int,
    points: Sequence[tuple[float, float]],
    *,
    polygon: Sequence[tuple[float, float]] = (),
    expires_ms: int | None = None,
) -> bytes:
    """Render `incident` as one CAP 1.2 ``alert`` (UTF-8 XML bytes).

    Args:
        incident: the incident to announce.
        ctx: sender identity, time zone and message status.
        sent_ms: the sending time; at the warning's first sending time the message is the
            ``Alert`` itself, later an ``Update`` or ``Cancel`` referencing it.
        points: (lat, lon) of the affected devices; at least one.
        polygon: an optional closed ring of (lat, lon), e.g. the district boundary.
        expires_ms: when the information stops being valid.

    Returns:
        The XML document.
    """
    if not points:
        raise ValueError(f"incident {incident.id}: CAP needs at least one location")
    first = warning_ref(ctx, incident)
    cancelled = incident.state is IncidentState.CANCELLED
    original = sent_ms <= first.sent_ms and not cancelled
    msg_type = "Alert" if original else "Cancel" if cancelled else "Update"
    root = ET.Element(f"{{{NS}}}alert")
    _add(root, "identifier", first.identifier if original else identifier(ctx, incident, sent_ms))
    _add(root, "sender", ctx.sender)
    _add(root, "sent", cap_time(sent_ms, ctx.tz))
    _add(root, "status", ctx.status)
    _add(root, "msgType", msg_type)
    _add(root, "scope", "Public")
    if not original:
        sent = cap_time(first.sent_ms, ctx.tz)
        _add(root, "references", f"{ctx.sender},{first.identifier},{sent}")
    _add(root, "incidents", incident.id)
    _info(root, incident, ctx, sent_ms, points, polygon, expires_ms)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _info(
    root: ET.Element,
    incident: Incident,
    ctx: CapContext,
    sent_ms: int,
    points: Sequence[tuple[float, float]],
    polygon: Sequence[tuple[float, float]],
    expires_ms: int | None,
) -> None:
    severity, ended = incident.severity, incident.state in ENDED
    info = _add(root, "info")
    _add(info, "language", ctx.language)
    _add(info, "category", CAP_CATEGORY[incident.category])
    _add(info, "event", EVENT_NAME[incident.category])
    _add(info, "responseType", "AllClear" if ended else "Monitor")
    _add(info, "urgency", "Past" if ended else URGENCY[severity])
    _add(info, "severity", CAP_SEVERITY[severity])
    _add(info, "certainty", "Observed")
    _add(info, "effective", cap_time(incident.opened_ms, ctx.tz))
    if expires_ms is not None:
        _add(info, "expires", cap_time(expires_ms, ctx.tz))
    _add(info, "senderName", ctx.sender_name)
    level = LEVEL[severity]
    colour = severity.name.lower()
    prefix = f"{colour.capitalize()} warning (level {level}): " if level else ""
    _add(info, "headline", prefix + incident.title)
    _add(info, "description", _description(incident, ctx))
    _add(info, "instruction", "The situation is over." if ended else INSTRUCTION[incident.category])
    if ctx.web is not None:
        _add(info, "web", ctx.web)
    parameter = _add(info, "parameter")
    _add(parameter, "valueName", "warningColour")
    _add(parameter, "value", colour)
    area = _add(info, "area")
    _add(area, "areaDesc", ", ".join(incident.districts or incident.grids) or "city")
    if polygon:
        _add(area, "polygon", " ".join(f"{lat:.5f},{lon:.5f}" for lat, lon in polygon))
    _add(area, "circle", _circle(points))


def _description(incident: Incident, ctx: CapContext) -> str:
    rules = ", ".join(sorted({m.rule_id for m in incident.members}))
    return (
        f"{len(incident.members)} alert(s) from {len(incident.devices)} sensor(s) "
        f"since {cap_time(incident.opened_ms, ctx.tz)} (rules: {rules}). "
        f"Incident state: {incident.state.value.replace('_', ' ')}."
    )


def _circle(points: Sequence[tuple[float, float]]) -> str:
    lat = sum(p[0] for p in points) / len(points)
    lon = sum(p[1] for p in points) / len(points)
    radius_km = max(0.5, max(_km(lat, lon, p[0], p[1]) for p in points) + 0.2)
    return f"{lat:.5f},{lon:.5f} {radius_km:.2f}"


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{NS}}}{tag}")
    element.text = None if text is None else xml_text(text)
    return element


def xml_text(text: str) -> str:
    """`text` as XML 1.0 carries it: characters it forbids (most C0 controls, surrogates,
    U+FFFE/U+FFFF) become U+FFFD, and ``\\r\\n`` and ``\\r`` become ``\\n``, which is what a
    parser would read back anyway."""
    return _NOT_XML.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))


def is_public_warning(incident: Incident) -> bool:
    """Whether the public sees the incident as a warning: still running, and not about a device."""
    return incident.state not in ENDED and incident.category is not Category.DEVICE
