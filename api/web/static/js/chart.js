// Charts: with uPlot a sparkline of one series and a series with threshold lines and marked
// detections (times on the axes in the city's zone); bars for the reports as a plain table.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h } from "./dom.js";
import { timeZone } from "./time.js";

const tzDate = (s) => uPlot.tzDate(new Date(s * 1000), timeZone());

function width(element, fallback = 320) {
  return Math.max(120, Math.floor(element.clientWidth || fallback));
}

/** A small line chart of points [{at, value}] (at: epoch ms) in `element` (no axes). */
export function sparkline(element, points, { colour = "#1f64c8", height = 48 } = {}) {
  element.replaceChildren();
  const data = [points.map((p) => p.at / 1000), points.map((p) => p.value)];
  return new uPlot({
    width: width(element, 240), height, tzDate, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: true } }, axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: colour, width: 1.5 }],
  }, data, element);
}

/**
 * A series [{at, value}] (at: epoch ms) named `label`, with optional horizontal `thresholds`
 * [{value, label, colour}] and `marks` [{at, value, colour}] (detections) drawn as points.
 */
export function seriesChart(element, points, { label = "", unit = "", thresholds = [], marks = [], height = 220 } = {}) {
  element.replaceChildren();
  const xs = [...new Set([...points.map((p) => p.at), ...marks.map((m) => m.at)])].sort((a, b) => a - b);
  const valueAt = new Map(points.map((p) => [p.at, p.value]));
  const nearest = (ms) => points.reduce((best, p) => (Math.abs(p.at - ms) < Math.abs(best.at - ms) ? p : best), points[0])?.value ?? null;
  const markAt = new Map(marks.map((m) => [m.at, m.value ?? nearest(m.at)]));
  const data = [xs.map((x) => x / 1000), xs.map((x) => valueAt.get(x) ?? null)];
  const series = [{}, { label: unit ? `${label} (${unit})` : label, stroke: "#1f3b57", width: 1.5, spanGaps: true }];
  for (const threshold of thresholds) {
    data.push(xs.map(() => threshold.value));
    series.push({ label: threshold.label, stroke: threshold.colour, width: 2, dash: [8, 4], points: { show: false } });
  }
  if (marks.length) {
    data.push(xs.map((x) => (markAt.has(x) ? markAt.get(x) : null)));
    series.push({ label: marks[0].label ?? "", stroke: marks[0].colour ?? "#d7191c", width: 0, paths: () => null,
      points: { show: true, size: 10, fill: marks[0].colour ?? "#d7191c" } });
  }
  return new uPlot({ width: width(element), height, tzDate, scales: { x: { time: true } }, series }, data, element);
}

/**
 * A bar chart as an accessible table: one row per group, one bar per series
 * `bars` [{label, colour, values[], format(v)}] (null: none), bars scaled to each series' max.
 */
export function barChart(element, groups, bars, { caption = "" } = {}) {
  const max = bars.map((bar) => Math.max(0, ...bar.values.filter((v) => v !== null)));
  const head = h("tr", {}, h("th", { scope: "col" }, ""), bars.map((bar) => h("th", { scope: "col" }, bar.label)));
  const rows = groups.map((group, i) => h("tr", {}, h("th", { scope: "row" }, group), bars.map((bar, k) => {
    const value = bar.values[i];
    const share = value === null || max[k] === 0 ? 0 : (75 * value) / max[k]; // room for the figure
    return h("td", {},
      h("span", { class: "bar", style: `width:${share.toFixed(1)}%;background:${bar.colour}` }),
      h("span", { class: "bar-value" }, value === null ? "–" : (bar.format ?? String)(value)));
  })));
  element.replaceChildren(h("table", { class: "bars" }, caption ? h("caption", {}, caption) : null,
    h("thead", {}, head), h("tbody", {}, rows)));
}
