"""The operations dashboard in a real browser, against a real platform process.

Readings are published over MQTT by a device provisioned through the API (the platform's own
broker checks its login), so each incident on the page went through ingest, the rule engine
and the alert service; the page hears of it only through the public API and its live stream.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Locator, Page, WebSocketRoute, expect

from tests.support.polling import eventually
from tests.web.conftest import N_DEVICES, DeviceLogin, Pages, Web, log_in, publish, screenshot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]
LIVE = re.compile(r"/api/v1/live(\?|$)")


async def live_dashboard(pages: Pages, user: str) -> Page:
    """A dashboard logged in as `user`, its city drawn and its live stream open."""
    page = await pages.open()
    await log_in(page, user)
    await expect(page.locator("#map")).to_have_attribute("data-devices", re.compile(r"\d+"))
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    return page


async def raise_gas_incident(web: Web) -> DeviceLogin:
    """A new gas detector reads 70 % LEL: a red `gas-lel` alert, an incident in its district."""
    device = await web.provision("gas")
    publish(web, device, "lel_pct", [5, 70])
    return device


def incident_of(page: Page, device: DeviceLogin) -> Locator:
    """The feed item of the incident holding `device`."""
    return page.locator(f'#feed [data-incident][data-devices~="{device.device_id}"]')


async def test_operator_sees_the_city_map_and_the_feed(web: Web, pages: Pages) -> None:
    page = await pages.open()
    await log_in(page, "ops1")
    the_map = page.locator("#map")
    await expect(the_map).to_have_attribute("data-devices", str(N_DEVICES))
    assert int(await the_map.get_attribute("data-areas") or 0) > 0
    await expect(page.locator("#map path.leaflet-interactive").first).to_be_visible()
    await expect(page.locator("#severity-counters [data-severity=red]")).to_be_visible()
    await expect(page.locator("#feed")).to_be_visible()
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


async def test_an_incident_appears_live_and_an_acknowledgement_reaches_every_dashboard(
    web: Web, pages: Pages
) -> None:
    first = await live_dashboard(pages, "ops1")
    second = await live_dashboard(pages, "ops2")
    red_count = first.locator("#severity-counters [data-severity=red] .counter-n")
    reds_before = int(await red_count.inner_text())

    device = await raise_gas_incident(web)

    item = incident_of(first, device)
    await expect(item).to_be_visible()  # live: no reload
    await expect(red_count).to_have_text(str(reds_before + 1))
    await expect(incident_of(second, device)).to_be_visible()
    await screenshot(first, "dashboard")

    # the device on the map: found from the keyboard, its latest reading and sparkline
    await first.fill("#find-device input", device.device_id)
    await first.press("#find-device input", "Enter")
    reading = first.locator("#device-panel li[data-metric=lel_pct]")
    await expect(reading.locator(".value")).to_have_text(re.compile(r"^70(\.0)? "))
    await expect(reading.locator(".spark canvas")).to_be_attached()
    await first.keyboard.press("Escape")

    await item.locator("a").click()
    detail = first.locator("#incident")
    await expect(detail.locator("#incident-devices")).to_contain_text(device.device_id)
    await expect(detail.locator(".series-chart canvas")).to_be_attached()
    await expect(detail.locator(".series-chart .u-legend")).to_contain_text(">= 20")
    await expect(detail.locator("table.dispatch")).to_be_visible()
    await screenshot(first, "incident-detail")

    await incident_of(second, device).locator("a").click()  # the other operator watches it
    await expect(second.locator("#incident-state")).to_have_attribute("data-state", "dispatched")

    await detail.locator("#action-acknowledge").click()

    await expect(first.locator("#incident-state")).to_have_attribute("data-state", "acknowledged")
    await expect(second.locator("#incident-state")).to_have_attribute("data-state", "acknowledged")
    await expect(second.locator("#incident-timeline li[data-kind=acknowledged]")).to_contain_text(
        "ops1")
    await second.click("#incident a.back")
    await expect(incident_of(second, device)).to_have_attribute("data-state", "acknowledged")
    assert await second.evaluate("window.loadedOnce") is True  # updated, not reloaded


async def test_the_feed_resumes_after_a_lost_connection_without_losing_events(
    web: Web, pages: Pages
) -> None:
    page = await pages.open()
    opened: list[str] = []
    sockets: list[WebSocketRoute] = []
    blocked = {"now": False}

    async def through(ws: WebSocketRoute) -> None:
        opened.append(ws.url)
        if blocked["now"]:  # the network is down: the page cannot get through
            await ws.close(code=4000, reason="offline")
            return
        sockets.extend([ws, ws.connect_to_server()])

    await page.route_web_socket(LIVE, through)
    await log_in(page, "ops1")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    before = await raise_gas_incident(web)
    await expect(incident_of(page, before)).to_be_visible()

    blocked["now"] = True
    for ws in sockets:  # both ends, as when a network link fails
        await ws.close(code=4000, reason="connection lost")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "offline")
    during = await raise_gas_incident(web)  # while the page hears nothing
    async with web.client("ops1") as api:
        async def stored() -> bool:
            found = (await api.get("/api/v1/incidents", params={"district": during.district,
                                                                 "severity": "red"})).json()
            return any(during.device_id in i["devices"] for i in found["items"])

        await eventually(stored, "the incident raised while the page was cut off")
    blocked["now"] = False

    await expect(incident_of(page, during)).to_be_visible()
    assert any("since=" in url for url in opened[1:]), opened  # resumed, not started afresh


async def test_a_viewer_reads_but_is_offered_no_action(web: Web, pages: Pages) -> None:
    page = await live_dashboard(pages, "viewer1")
    device = await raise_gas_incident(web)
    await incident_of(page, device).locator("a").click()
    await expect(page.locator("#incident-state")).to_be_visible()
    await expect(page.locator("#incident .actions")).to_have_count(0)
    await page.click("header nav a[data-view=maintenance]")
    await expect(page.locator("#view-maintenance h2").first).to_be_visible()
    await expect(page.locator("#new-silence")).to_have_count(0)


async def test_docs_load_nothing_from_the_internet(web: Web, pages: Pages) -> None:
    page = await pages.open()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    await expect(page.get_by_text("/api/v1/incidents").first).to_be_visible()
    assert requested and all(url.startswith(web.url) for url in requested), requested


async def test_every_action_from_the_keyboard_reaches_the_other_dashboard(
    web: Web, pages: Pages
) -> None:
    first = await live_dashboard(pages, "ops1")
    second = await live_dashboard(pages, "ops2")
    device = await raise_gas_incident(web)
    await expect(incident_of(first, device)).to_be_visible()
    await incident_of(second, device).locator("a").click()
    timeline = second.locator("#incident-timeline")

    await incident_of(first, device).locator("a").focus()
    await first.keyboard.press("Enter")
    await expect(first.locator("#incident-title")).to_be_focused()
    incident_id = (await first.evaluate("location.hash")).rsplit("/", 1)[1]
    async with web.client("ops1") as api:
        opened_at = (await api.get(f"/api/v1/incidents/{incident_id}")).json()["opened_at"]
    city_time = datetime.fromisoformat(opened_at).astimezone(ZoneInfo("Asia/Shanghai"))
    await expect(first.locator("#incident-facts")).to_contain_text(  # the browser is in UTC
        city_time.strftime("%Y-%m-%d %H:%M:%S"))

    actions = first.locator("#incident .actions")
    await actions.locator("form.note textarea").fill("crew informed")
    await actions.locator("form.note textarea").press("Tab")
    await first.keyboard.press("Enter")  # the focused "Add note" button
    await expect(timeline.locator("li[data-kind=note]", has_text="crew informed")).to_be_visible()

    await actions.locator("form.silence select").select_option(label="1 hour")
    await actions.locator("form.silence button").click()
    await expect(timeline.locator("li[data-kind=note]", has_text=device.device_id)).to_be_visible()
    async with web.client("ops1") as api:
        silences = (await api.get("/api/v1/silences")).json()
    assert [device.device_id] in [[m["value"] for m in s["matchers"]] for s in silences]

    await actions.locator("form.reassign select").select_option("fire-station")
    await actions.locator("form.reassign button").click()
    await expect(second.locator("#incident-team")).to_have_text("fire-station")

    await actions.locator("form.cancel input").fill("calibration gas")
    await actions.locator("form.cancel button").click()
    await expect(second.locator("#incident-state")).to_have_attribute("data-state", "cancelled")
    await expect(timeline.locator("li[data-kind=cancelled]")).to_contain_text("calibration gas")
    assert await second.evaluate("window.loadedOnce") is True
