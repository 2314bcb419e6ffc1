// The supervision view (在线监督): MTTA, MTTR and SLA breaches per team and per category over
// a chosen span, from GET /reports, as bar charts.

import { api, showError } from "../api.js";
import { barChart } from "../chart.js";
import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { formatDuration, fromZonedInput, toZonedInput } from "../time.js";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000; // the inputs have no seconds: up to the next whole minute
const SPANS = [["1", 1], ["7", 7], ["30", 30]];

function groupLabel(groupBy, key) {
  return groupBy === "category" ? t(`category.${key}`) : key;
}

function chart(element, report) {
  if (!report.rows.length) {
    fill(element, h("p", {}, t("reports.none")));
    return;
  }
  const rows = report.rows;
  barChart(element, rows.map((r) => groupLabel(report.group_by, r.key)), [
    { label: t("reports.incidents"), colour: "#7a8a99", values: rows.map((r) => r.incidents) },
    { label: t("reports.mtta"), colour: "#1f64c8", values: rows.map((r) => r.mtta_s), format: (s) => formatDuration(s * 1000) },
    { label: t("reports.mttr"), colour: "#f07c00", values: rows.map((r) => r.mttr_s), format: (s) => formatDuration(s * 1000) },
    { label: t("reports.sla"), colour: "#d7191c", values: rows.map((r) => r.sla_breaches) },
  ]);
}

async function load(byTeam, byCategory, startMs, endMs) {
  const query = { since: new Date(startMs).toISOString(), until: new Date(endMs).toISOString() };
  const [team, category] = await Promise.all([
    api("/reports", { query: { ...query, group_by: "team" } }),
    api("/reports", { query: { ...query, group_by: "category" } }),
  ]);
  chart(byTeam, team);
  chart(byCategory, category);
}

/** Render the supervision view into `element`, for the last 7 days at first. */
export async function showReports(element) {
  const now = Date.now();
  const byTeam = h("div", { id: "report-team" });
  const byCategory = h("div", { id: "report-category" });
  const form = h("form", { id: "report-span", class: "grid-form" },
    h("label", {}, t("reports.start"), h("input", { name: "start", type: "datetime-local", required: true, value: toZonedInput(now - 7 * DAY_MS) })),
    h("label", {}, t("reports.end"), h("input", { name: "end", type: "datetime-local", required: true, value: toZonedInput(now + MINUTE_MS) })),
    h("button", { type: "submit" }, t("reports.show")),
    SPANS.map(([label, days]) => h("button", { type: "button", class: "preset", onclick: () => {
      form.start.value = toZonedInput(Date.now() - days * DAY_MS);
      form.end.value = toZonedInput(Date.now() + MINUTE_MS);
      form.requestSubmit();
    } }, `${label} d`)));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(byTeam, byCategory, fromZonedInput(form.start.value), fromZonedInput(form.end.value)).catch(showError);
  });
  fill(element, h("h2", {}, t("reports.title")), form,
    h("section", {}, h("h3", {}, t("reports.by_team")), byTeam),
    h("section", {}, h("h3", {}, t("reports.by_category")), byCategory));
  await load(byTeam, byCategory, now - 7 * DAY_MS, now);
}
