"""What a page says: an incident's facts for people, as a short text and as an e-mail.

Pure. Times are the city's local time; the link opens the incident in the dashboard. The
e-mail is a complete RFC 5322 message without ``From`` (the e-mail channel adds its sender),
plain text with an HTML alternative, whose ``Message-ID`` derives from the outbox key, so a
retried message is recognisably the same one.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from alerts.model import LEVEL, Incident

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")  # what could split a header line


@dataclass(frozen=True)
class PageContext:
    """The city's time zone, and the address the dashboard is opened at (None: no link)."""

    tz: str = "UTC"
    web: str | None = None


def link(incident: Incident, context: PageContext) -> str:
    """The incident in the dashboard, or "" when no web address is configured."""
    if context.web is None:
        return ""
    return f"{context.web.rstrip('/')}/#/incident/{incident.id}"


def local_time(ts_ms: int, tz: str) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def facts(incident: Incident, context: PageContext) -> dict[str, str]:
    """The incident's side of the placeholders of `alerts.templates.FIELDS`."""
    severity = incident.severity
    area = ", ".join(incident.districts or incident.grids) or "unknown area"
    found = {
        "title": _CONTROL.sub(" ", incident.title),
        "severity": severity.name.lower(),
        "level": LEVEL[severity] or "",
        "category": incident.category.value,
        "area": area,
        "time": local_time(incident.opened_ms, context.tz),
        "link": link(incident, context),
        "incident_id": incident.id,
        "team": incident.team_id or "",
    }
    found["text"] = text(found)
    return found


def headline(f: dict[str, str]) -> str:
    """``[RED I] Gas leak …``: severity (colour word and level) and title."""
    grade = " ".join(filter(None, (f["severity"].upper(), f["level"])))
    return f"[{grade}] {f['title']}"


def text(f: dict[str, str]) -> str:
    """One short line for an SMS or a voice call."""
    line = f"{headline(f)} - {f['category']}, {f['area']}, {f['time']}."
    return f"{line} {f['link']}" if f["link"] else line


def _plain(f: dict[str, str]) -> str:
    rows = [
        headline(f),
        "",
        f"Severity: {f['severity']}" + (f" (level {f['level']})" if f["level"] else ""),
        f"Category: {f['category']}",
        f"Area:     {f['area']}",
        f"Opened:   {f['time']}",
        f"Team:     {f['team']}",
        f"Incident: {f['incident_id']}",
    ]
    if f["link"]:
        rows += ["", f"Open it in the dashboard: {f['link']}"]
    rows += ["", "Acknowledge the incident to stop further escalation."]
    return "\n".join(rows) + "\n"


def _html(f: dict[str, str]) -> str:
    e = {k: html.escape(v) for k, v in f.items()}
    rows = "".join(
        f"<tr><th align=left>{label}</th><td>{e[key]}</td></tr>"
        for label, key in (("Severity", "severity"), ("Level", "level"), ("Category", "category"),
                           ("Area", "area"), ("Opened", "time"), ("Team", "team"),
                           ("Incident", "incident_id"))
    )
    more = f'<p><a href="{e["link"]}">Open it in the dashboard</a></p>' if f["link"] else ""
    return (f"<html><body><h2>{html.escape(headline(f))}</h2><table>{rows}</table>{more}"
            "<p>Acknowledge the incident to stop further escalation.</p></body></html>\n")


def email(f: dict[str, str], name: str, address: str, key: str, now_ms: int, tz: str) -> str:
    """The e-mail paging `name` <`address`> about the incident of `f` (no ``From`` yet)."""
    message = EmailMessage(policy=policy.SMTP)
    local, _, domain = address.rpartition("@")
    message["To"] = Address(_CONTROL.sub(" ", name), local, domain)
    message["Subject"] = headline(f)
    message["Date"] = format_datetime(datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz)))
    message["Message-ID"] = f"<{key.replace(':', '.')}@urbanwatch>"
    message.set_content(_plain(f))
    message.add_alternative(_html(f), subtype="html")
    return message.as_string()
