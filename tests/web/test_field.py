"""The field page in a real browser on a phone-sized screen, against a real platform process:
what a responder sees is what the API lets their team see; the right responder is alerted to a
new incident and works it to resolved, with a note and a photo, from the page."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, expect

from tests.support.polling import eventually
from tests.web.conftest import DeviceLogin, Pages, Web, log_in, publish, screenshot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]
PHONE = {"width": 390, "height": 844}
GAS_TEAM, DRAINAGE_TEAM = "gas-emergency", "drainage-crew"
# counts what the page does to get attention (a real phone would beep and buzz)
COUNT_ALARMS = """
window.beeps = 0; window.vibrations = 0;
navigator.vibrate = () => { window.vibrations += 1; return true; };
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.beeps += 1;
  return start.apply(this, args);
};
"""


def png(width: int, height: int) -> bytes:
    """A plain PNG picture (one colour), as a camera app could hand over."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes((200, 120, 40)) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def responders(web: Web) -> AsyncIterator[None]:
    await web.add_user("gas1", "responder", GAS_TEAM)
    await web.add_user("drain1", "responder", DRAINAGE_TEAM)
    yield


async def raise_gas_incident(web: Web, lel_pct: float = 70) -> tuple[DeviceLogin, str]:
    """A new gas detector in a district of its own reads `lel_pct` (70: red, 30: orange): the
    id of the incident it is in (the gas team's)."""
    device = await web.provision("gas")
    publish(web, device, "lel_pct", [5, lel_pct])
    found: list[str] = []
    async with web.client("ops1") as api:
        async def dispatched() -> bool:
            page = (await api.get("/api/v1/incidents", params={"state": "dispatched"})).json()
            found.extend(i["id"] for i in page["items"] if device.device_id in i["devices"])
            return bool(found)

        await eventually(dispatched, "the gas incident dispatched")
    return device, found[0]


async def field_page(pages: Pages, user: str) -> Page:
    """The field page on a phone, logged in as `user`, its list loaded and its stream open."""
    page = await pages.open(viewport=PHONE)
    await page.add_init_script(COUNT_ALARMS)
    await log_in(page, user, "/field")
    await expect(page.locator("#incidents")).to_have_attribute("data-loaded", "true")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def card_of(page: Page, device: DeviceLogin) -> Locator:
    return page.locator(f'#incidents [data-devices~="{device.device_id}"]')


async def test_a_responder_of_another_team_does_not_see_the_incident(
    web: Web, pages: Pages, responders: None
) -> None:
    device, incident_id = await raise_gas_incident(web)
    page = await field_page(pages, "drain1")
    await expect(card_of(page, device)).to_have_count(0)
    await expect(page.locator(f'#incidents [data-incident="{incident_id}"]')).to_have_count(0)
    await page.goto(f"/field#/incident/{incident_id}")  # not by its address either
    await expect(page.locator("#errors .error")).to_contain_text("404")
    async with web.client("drain1") as api:  # the API's team rule, which the page only shows
        assert (await api.get(f"/api/v1/incidents/{incident_id}")).status_code == 404
        listed = (await api.get("/api/v1/incidents")).json()["items"]
        assert incident_id not in [i["id"] for i in listed]


async def stand_at(page: Page, web: Web, device: DeviceLogin) -> None:
    """The phone says it is where `device` is (the responder allowed the page to ask)."""
    async with web.client("ops1") as api:
        where = (await api.get(f"/api/v1/devices/{device.device_id}")).json()
    await page.context.grant_permissions(["geolocation"])
    await page.context.set_geolocation({"latitude": where["lat"], "longitude": where["lon"]})


async def test_the_teams_responder_is_alerted_and_resolves_it_with_a_note_and_photo(
    web: Web, pages: Pages, responders: None
) -> None:
    page = await field_page(pages, "gas1")
    await page.click("#sound")  # the responder lets the page make sound
    await expect(page.locator("#sound")).to_have_attribute("aria-pressed", "true")

    device, incident_id = await raise_gas_incident(web)

    card = card_of(page, device)
    await expect(card).to_have_attribute("data-fresh", "true")  # arrived live
    await expect(page.locator("body")).not_to_have_attribute("data-alerts", "0")
    assert await page.evaluate("window.beeps") >= 1
    assert await page.evaluate("window.vibrations") >= 1
    await stand_at(page, web, device)
    await expect(card.locator(".distance")).to_have_text("0 m")
    await expect(page.locator("#where")).to_contain_text("Nearest")
    await screenshot(page, "field")

    await card.locator("a").click()
    state = page.locator("#incident-state")
    await expect(state).to_have_attribute("data-state", "dispatched")
    for step, after in (("acknowledge", "acknowledged"), ("en_route", "en_route"),
                        ("on_scene", "on_scene")):
        await page.click(f"#action-{step}")
        await expect(state).to_have_attribute("data-state", after)
    note, scene = "valve closed, street aired", png(2400, 1800)

    async def note_and_photo_in_the_form() -> bool:
        """Filled into the form on the page now: a live update that redraws the view while
        Playwright fills the one it found would leave the text in a detached form (the page
        carries over what the attached form holds)."""
        box, photo_input = page.locator("#progress textarea"), page.locator("#photo")
        if await box.input_value() != note:
            await box.fill(note)
        if not await photo_input.evaluate("input => input.files.length"):
            await photo_input.set_input_files(files=[
                {"name": "scene.png", "mimeType": "image/png", "buffer": scene}])
        return (await box.input_value() == note
                and await photo_input.evaluate("input => input.files.length") == 1)

    await eventually(note_and_photo_in_the_form, "the note and photo in the form")
    await page.click("#action-resolved")
    await expect(state).to_have_attribute("data-state", "resolved")
    timeline = page.locator("#incident-timeline")
    await expect(timeline.locator("li[data-kind=resolved]")).to_contain_text(note)
    photo = timeline.locator("li[data-kind=photo] img")
    await expect(photo).to_be_visible()
    await eventually(lambda: photo.evaluate("img => img.complete && img.naturalWidth > 0"),
                     "the photo drawn on the timeline")
    await screenshot(page, "field-incident")

    await page.click("#detail-view .back")
    await expect(page.locator(f'#incidents [data-incident="{incident_id}"]')).to_have_count(0)
    async with web.client("ops1") as api:
        stored = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
    mine = [(e["kind"], e["detail"]) for e in stored["timeline"] if e["actor"] == "gas1"]
    assert [kind for kind, _ in mine] == [
        "acknowledged", "en_route", "on_scene", "photo", "resolved"]
    assert mine[-1][1] == "valve closed, street aired"
    assert mine[3][1].endswith(".jpg")  # made smaller on the phone, sent as JPEG


async def test_most_severe_first_then_nearest(web: Web, pages: Pages, responders: None) -> None:
    orange_here, _ = await raise_gas_incident(web, lel_pct=30)
    red_far, _ = await raise_gas_incident(web)
    red_here, _ = await raise_gas_incident(web)
    page = await field_page(pages, "gas1")
    await stand_at(page, web, red_here)
    await expect(card_of(page, red_here).locator(".distance")).to_have_text("0 m")

    expected = [d.device_id for d in (red_here, red_far, orange_here)]

    async def in_order() -> bool:
        cards = await page.locator("#incidents li[data-incident]").evaluate_all(
            "cards => cards.map(card => card.dataset.devices.split(' '))")
        mine = [device for devices in cards for device in devices if device in expected]
        return mine == expected

    await eventually(in_order, "red here, red far away, then orange here")
