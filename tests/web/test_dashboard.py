"""The operations dashboard in a real browser, against a real platform process."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import N_DEVICES, Pages, Web, log_in

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


async def test_operator_sees_the_city_map(web: Web, pages: Pages) -> None:
    page = await pages.open()
    await log_in(page, "ops1")
    the_map = page.locator("#map")
    await expect(the_map).to_have_attribute("data-devices", str(N_DEVICES))
    assert int(await the_map.get_attribute("data-areas") or 0) > 0
    await expect(page.locator("#map path.leaflet-interactive").first).to_be_visible()


async def test_docs_load_nothing_from_the_internet(web: Web, pages: Pages) -> None:
    page = await pages.open()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    await expect(page.get_by_text("/api/v1/incidents").first).to_be_visible()
    assert requested and all(url.startswith(web.url) for url in requested), requested
