// Rules: the list the engine runs, one rule's thresholds, and a backtest over a chosen span
// with its detections drawn on a matching device's series (POST /rules/backtest).

import { api, showError } from "../api.js";
import { seriesChart } from "../chart.js";
import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { severityColour } from "../severity.js";
import { fromZonedInput, toZonedInput } from "../time.js";
import { thresholdsOf } from "./incident.js";
import { fetchDevice, store } from "./store.js";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const COLUMNS = ["id", "name", "severity", "when", "for", "clear_when", "enabled"];

function cell(rule, column) {
  if (column === "enabled") return rule.enabled ? t("rules.yes") : t("rules.no");
  if (column === "for") return rule.for ?? "";
  return rule[column] ?? "";
}

function matchingDevices(rule) {
  const types = rule.match?.device_type ?? [];
  return [...store.devices.values()].filter((d) => !types.length || types.includes(d.type));
}

async function drawBacktest(element, rule, result, deviceId, startIso, endIso) {
  const metric = (rule.match?.metric ?? [])[0];
  const report = result.rules.find((r) => r.rule_id === rule.id);
  fill(element, h("p", { id: "backtest-summary" }, t("rules.result", { readings: result.readings, series: result.series, raised: report?.raised_total ?? 0 })));
  if (!deviceId || !metric) return;
  const [device, series] = await Promise.all([fetchDevice(deviceId).catch(() => null), // its attributes
    api(`/devices/${encodeURIComponent(deviceId)}/readings`, { query: { metric, since: startIso, until: endIso } })]);
  const marks = (report?.raised ?? []).filter((e) => e.device_id === deviceId)
    .map((e) => ({ at: e.at, value: e.value, colour: severityColour(e.severity), label: t("rules.detections") }));
  const chart = h("div", { class: "series-chart", id: "backtest-chart", dataset: { detections: marks.length } });
  element.append(h("p", {}, `${deviceId} · ${metric}`), chart);
  seriesChart(chart, series.points, { label: metric, unit: series.unit, marks, thresholds: thresholdsOf(rule, device) });
}

function backtestForm(rule, output) {
  const now = Date.now();
  const devices = matchingDevices(rule);
  const form = h("form", { id: "backtest", class: "grid-form" },
    h("label", {}, t("rules.start"), h("input", { name: "start", type: "datetime-local", required: true, value: toZonedInput(now - DAY_MS) })),
    // the next whole minute: the input has no seconds, and the readings of this minute count
    h("label", {}, t("rules.end"), h("input", { name: "end", type: "datetime-local", required: true, value: toZonedInput(now + MINUTE_MS) })),
    h("label", {}, t("rules.device"), h("select", { name: "device" }, devices.slice(0, 500).map((d) => new Option(d.id, d.id)))),
    h("button", { type: "submit" }, t("rules.run_backtest")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const start = new Date(fromZonedInput(data.get("start"))).toISOString();
    const end = new Date(fromZonedInput(data.get("end"))).toISOString();
    fill(output, "…");
    try {
      const result = await api("/rules/backtest", { method: "POST", json: { rule_ids: [rule.id], since: start, until: end } });
      await drawBacktest(output, rule, result, data.get("device"), start, end);
    } catch (error) {
      fill(output);
      showError(error);
    }
  });
  return form;
}

function showRule(element, rule) {
  const output = h("div", { class: "backtest-output" });
  const staff = ["admin", "operator"].includes(store.caller.role);
  fill(element,
    h("h2", { id: "rule-title", tabindex: "-1" }, `${rule.id} · ${rule.name ?? ""}`),
    h("dl", { class: "facts", id: "rule-thresholds" }, COLUMNS.slice(2).flatMap((c) => [h("dt", {}, t(`rules.${c}`)), h("dd", {}, String(cell(rule, c)))]),
      rule.description ? [h("dt", {}, "ℹ"), h("dd", {}, rule.description)] : []),
    staff ? [h("h3", {}, t("rules.backtest")), backtestForm(rule, output), output] : null);
  element.querySelector("#rule-title").focus();
}

/** Render the rules view into `element` (rules from the store, loaded with the dashboard). */
export async function showRules(element) {
  const { items } = await api("/rules");
  const detail = h("section", { class: "rule-detail", "aria-live": "polite" }, h("p", {}, t("rules.pick")));
  const table = h("table", { id: "rules" },
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, t(`rules.${c}`))))),
    h("tbody", {}, items.map((rule) => h("tr", { dataset: { rule: rule.id } }, COLUMNS.map((c, k) => h("td", {},
      k === 0 ? h("button", { type: "button", class: "link", onclick: () => showRule(detail, rule) }, rule.id) : String(cell(rule, c))))))));
  fill(element, h("div", { class: "rules-list" }, h("h2", {}, t("rules.title")), table), detail);
}
