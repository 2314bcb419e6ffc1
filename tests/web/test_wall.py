"""The wall screen in a real browser, against a real platform process: opened once with a
read-only key, then left alone while incidents arrive and the platform restarts."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Locator, Page, expect

from tests.web.conftest import DeviceLogin, Pages, Web, publish, screenshot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]
WALL = {"width": 1920, "height": 1080}  # a video wall's screen


async def wall_key(web: Web) -> tuple[str, str]:
    """A new read-only key for the wall, as an admin creates one: (its id, the key)."""
    async with web.client("admin1") as api:
        created = await api.post("/api/v1/api-keys", json={"name": "wall", "role": "viewer"})
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["key"]


async def devices_now(web: Web) -> int:
    async with web.client("admin1") as api:
        return int((await api.get("/api/v1/devices", params={"limit": 1})).json()["total"])


async def open_wall(pages: Pages, web: Web, key: str) -> Page:
    """The wall opened once with its key, the city drawn and the live stream open."""
    page = await pages.open(viewport=WALL)
    await page.goto(f"/wall#key={key}")
    await expect(page.locator("body")).to_have_attribute("data-state", "live")
    devices = str(await devices_now(web))
    await expect(page.locator("#map")).to_have_attribute("data-devices", devices)
    assert "key=" not in page.url  # the key left the address bar for the browser's storage
    await page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    return page


async def raise_gas_incident(web: Web) -> DeviceLogin:
    """A new gas detector reads 70 % LEL: a red alert, an incident in its district."""
    device = await web.provision("gas")
    publish(web, device, "lel_pct", [5, 70])
    return device


def counter(page: Page, severity: str) -> Locator:
    return page.locator(f"#severity-counters [data-severity={severity}] .n")


def on_ticker(page: Page, device: DeviceLogin) -> Locator:
    return page.locator(f'#ticker li[data-devices~="{device.device_id}"]')


async def test_the_wall_shows_a_new_incident_live_and_counts_it(web: Web, pages: Pages) -> None:
    page = await open_wall(pages, web, (await wall_key(web))[1])
    reds = int(await counter(page, "red").inner_text())
    total = int(await counter(page, "total").inner_text())

    device = await raise_gas_incident(web)

    await expect(on_ticker(page, device)).to_be_visible()
    await expect(counter(page, "red")).to_have_text(str(reds + 1))
    await expect(counter(page, "total")).to_have_text(str(total + 1))
    district = page.locator(f"#district-counters tr[data-district={device.district}]")
    await expect(district).not_to_have_attribute("data-count", "0")
    await expect(district.locator(".sev-red")).to_be_visible()
    await expect(page.locator("#map path.leaflet-interactive[stroke='#d7191c']").first
                 ).to_be_attached()  # its area outlined in red
    await expect(page.locator("#health [data-metric=devices]")).to_have_text(
        str(await devices_now(web)))  # the new detector too, though no event announced it
    await expect(page.locator("#health [data-metric=rate]")).not_to_have_text("\u2013")  # a rate
    assert await page.evaluate("window.loadedOnce") is True  # updated in place, never reloaded
    await screenshot(page, "wall")


async def test_a_revoked_wall_key_is_said_on_the_screen(web: Web, pages: Pages) -> None:
    key_id, key = await wall_key(web)
    page = await open_wall(pages, web, key)
    async with web.client("admin1") as api:
        assert (await api.delete(f"/api/v1/api-keys/{key_id}")).status_code == 200
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-state", "refused")
    await expect(page.locator(".wall-banner")).to_be_visible()


async def test_the_wall_survives_a_platform_restart_untouched(web: Web, pages: Pages) -> None:
    page = await open_wall(pages, web, (await wall_key(web))[1])
    total = int(await counter(page, "total").inner_text())

    assert await asyncio.to_thread(web.process.stop) == 0
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "offline")
    web.process.start()
    await web.process.wait_ready()

    await expect(page.locator("body")).to_have_attribute("data-state", "live")
    device = await raise_gas_incident(web)
    await expect(on_ticker(page, device)).to_be_visible()
    await expect(counter(page, "total")).to_have_text(str(total + 1))
    assert await page.evaluate("window.loadedOnce") is True
