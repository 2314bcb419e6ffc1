"""The dashboard's other views in a real browser: silences and maintenance made and ended from
the page, rules with a backtest drawn, the supervision view, and the Chinese labels."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.support.polling import eventually
from tests.web.conftest import Pages, Web, log_in, publish, screenshot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


async def test_silences_and_maintenance_are_made_and_ended_from_the_page(
    web: Web, pages: Pages
) -> None:
    device = await web.provision("gas")
    page = await pages.open()
    await log_in(page, "ops1", "/#/maintenance")

    form = page.locator("#new-silence")
    await form.locator("select[name=field]").select_option("device")
    await form.locator("input[name=value]").fill(device.device_id)
    await form.locator("input[name=reason]").fill("sensor swap")
    await form.locator("button[type=submit]").click()
    row = page.locator("#silences tr[data-silence]", has_text=device.device_id)
    await expect(row).to_contain_text("sensor swap")
    async with web.client("ops1") as api:
        silences = (await api.get("/api/v1/silences")).json()
    assert [s["matchers"] for s in silences if s["reason"] == "sensor swap"] == [
        [{"field": "device", "op": "=", "value": device.device_id}]]

    await row.locator("button").click()
    await expect(row).to_have_count(0)

    await page.fill("#to-maintenance input[name=device]", device.device_id)
    await page.press("#to-maintenance input[name=device]", "Enter")
    listed = page.locator(f'#maintenance-devices li[data-device="{device.device_id}"]')
    await expect(listed).to_be_visible()
    async with web.client("ops1") as api:
        stored = (await api.get(f"/api/v1/devices/{device.device_id}")).json()
    assert stored["status"] == "maintenance"

    await listed.locator("button").click()
    await expect(listed).to_have_count(0)
    async with web.client("ops1") as api:
        stored = (await api.get(f"/api/v1/devices/{device.device_id}")).json()
    assert stored["status"] == "active"


async def test_a_rule_is_read_and_backtested_with_its_detections_drawn(
    web: Web, pages: Pages
) -> None:
    device = await web.provision("gas")
    publish(web, device, "lel_pct", [3, 4, 35, 60, 5])  # raised at 35, escalated at 60
    async with web.client("ops1") as api:
        async def stored() -> bool:
            latest = (await api.get(f"/api/v1/devices/{device.device_id}/latest")).json()
            return bool(latest["readings"])

        await eventually(stored, "the readings stored")
    page = await pages.open()
    await log_in(page, "ops1", "/#/rules")
    await page.locator('#rules tr[data-rule="gas-lel"] button').click()
    thresholds = page.locator("#rule-thresholds")
    await expect(thresholds).to_contain_text("value >= 20")
    await expect(thresholds).to_contain_text("red if value >= 50 else orange")

    await page.locator("#backtest select[name=device]").select_option(device.device_id)
    await page.locator("#backtest button[type=submit]").click()
    await expect(page.locator("#backtest-summary")).to_contain_text(re.compile(r"raised [1-9]"))
    chart = page.locator("#backtest-chart")
    await expect(chart).to_have_attribute("data-detections", re.compile(r"^[1-9]"))
    await expect(chart.locator("canvas")).to_be_attached()


async def test_supervision_shows_mtta_mttr_and_sla_breaches_per_team_and_category(
    web: Web, pages: Pages
) -> None:
    device = await web.provision("gas")
    publish(web, device, "lel_pct", [70])
    async with web.client("ops1") as api:
        async def acknowledged() -> bool:
            query = {"district": device.district}
            found = (await api.get("/api/v1/incidents", params=query)).json()
            for incident in found["items"]:
                await api.post(f"/api/v1/incidents/{incident['id']}/acknowledge")
            return bool(found["items"])

        await eventually(acknowledged, "the incident, to acknowledge it")
    page = await pages.open()
    await log_in(page, "viewer1", "/#/reports")
    team = page.locator("#report-team table.bars")
    await expect(team.locator("tbody tr", has_text="gas-emergency")).to_be_visible()
    header = team.locator("thead")
    for column in ("MTTA", "MTTR", "SLA breaches"):
        await expect(header).to_contain_text(column)
    row = team.locator("tbody tr", has_text="gas-emergency")
    await expect(row.locator(".bar-value").nth(1)).to_have_text(re.compile(r"\d+ (s|min)"))
    await expect(page.locator("#report-category tbody tr", has_text="safety")).to_be_visible()


# Whether two characters come out as different pictures in the page's font: without a font
# that has them, both are the same "missing glyph" box.
DRAWN_APART = """([a, b]) => {
  const font = getComputedStyle(document.body).font;
  const pixels = (text) => {
    const canvas = new OffscreenCanvas(48, 48);
    const context = canvas.getContext("2d");
    context.font = font.replace(/\\d+(\\.\\d+)?px/, "32px");
    context.fillText(text, 4, 40);
    return context.getImageData(0, 0, 48, 48).data.join();
  };
  return pixels(a) !== pixels(b);
}"""


async def test_chinese_labels_when_the_browser_asks_and_a_switch_to_english(
    web: Web, pages: Pages
) -> None:
    page = await pages.open(locale="zh-CN")
    await log_in(page, "ops1")
    await expect(page.locator("header nav a[data-view=ops]")).to_have_text("态势")
    await expect(page.locator("#severity-counters [data-severity=red]")).to_contain_text("红色")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert await page.evaluate(DRAWN_APART, ["态", "势"]), "Chinese shows as boxes: no CJK font"
    await expect(page.locator("#map")).to_have_attribute("data-devices", re.compile(r"^[1-9]"))
    await screenshot(page, "dashboard-zh")
    await page.select_option("header .lang-switch", "en")
    await expect(page.locator("header nav a[data-view=ops]")).to_have_text("Situation")
    await expect(page.locator("#severity-counters [data-severity=red]")).to_contain_text("red")
