// The situation panel: counters of active incidents per severity and district, the filters,
// and the live feed of incidents and open alerts, newest first.

import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { WARNING_LEVELS, SEVERITIES, severityBadge, severityShape } from "../severity.js";
import { formatDateTime, formatTime } from "../time.js";
import { ACTIVE_STATES, FINAL_STATES, isActive, loadFinished, store } from "./store.js";

export const CATEGORIES = ["environment", "traffic", "safety", "flood", "fire", "infrastructure", "device"];
const FEED_LIMIT = 200;

export const filters = { severity: "", category: "", district: "", team: "", state: "active" };

/** Incidents passing the filters, newest change first. */
export function filtered() {
  const f = filters;
  return [...store.incidents.values()]
    .filter((i) => (f.state === "active" ? isActive(i) : !f.state || i.state === f.state))
    .filter((i) => !f.severity || i.severity === f.severity)
    .filter((i) => !f.category || i.category === f.category)
    .filter((i) => !f.district || i.districts.includes(f.district))
    .filter((i) => !f.team || i.team_id === f.team)
    .sort((a, b) => b.updated_at - a.updated_at);
}

export function renderCounters(element) {
  const active = [...store.incidents.values()].filter(isActive);
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  const byDistrict = new Map();
  for (const incident of active) {
    bySeverity[incident.severity] += 1;
    for (const district of incident.districts) byDistrict.set(district, (byDistrict.get(district) ?? 0) + 1);
  }
  const boxes = WARNING_LEVELS.map((s) => h("li", { class: `counter sev-${s}`, dataset: { severity: s } },
    h("span", { class: "counter-n" }, bySeverity[s]), " ",
    h("span", { class: "counter-label" }, h("span", { "aria-hidden": "true" }, severityShape(s)), " ", t(`severity.${s}`))));
  boxes.push(h("li", { class: "counter counter-total", dataset: { severity: "total" } },
    h("span", { class: "counter-n" }, active.length), " ", h("span", { class: "counter-label" }, t("counters.total"))));
  const districts = [...byDistrict.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const open = element.querySelector("details")?.open ?? true; // as the user left it
  fill(element,
    h("h2", {}, t("counters.title")),
    h("ul", { class: "counters", id: "severity-counters" }, boxes),
    h("details", { class: "by-district", open }, h("summary", {}, t("counters.by_district")),
      h("table", { id: "district-counters" }, h("tbody", {}, districts.map(([d, n]) =>
        h("tr", { dataset: { district: d } }, h("th", { scope: "row" }, d), h("td", {}, n)))))));
}

function select(name, options, onPick) {
  const id = `filter-${name}`;
  const control = h("select", { id, name },
    options.map(([value, label]) => new Option(label, value, false, value === filters[name])));
  control.addEventListener("change", () => onPick(name, control.value));
  return h("label", { for: id }, h("span", {}, t(`filters.${name}`)), control);
}

export function renderFilters(element, onFilter) {
  const any = ["", t("filters.any")];
  const districts = new Set(store.areas.features.filter((f) => f.properties.kind === "district").map((f) => f.properties.id));
  for (const incident of store.incidents.values()) for (const d of incident.districts) districts.add(d);
  const pick = async (name, value) => {
    filters[name] = value;
    if (name === "state" && FINAL_STATES.includes(value)) await loadFinished(value);
    onFilter();
  };
  fill(element,
    h("h2", { class: "visually-hidden" }, t("filters.title")),
    select("severity", [any, ...SEVERITIES.map((s) => [s, t(`severity.${s}`)])], pick),
    select("category", [any, ...CATEGORIES.map((c) => [c, t(`category.${c}`)])], pick),
    select("district", [any, ...[...districts].sort().map((d) => [d, d])], pick),
    select("team", [any, ...store.teams.map((team) => [team.id, team.name || team.id])], pick),
    select("state", [["active", t("filters.active")], any, ...[...ACTIVE_STATES, ...FINAL_STATES].map((s) => [s, t(`state.${s}`)])], pick));
}

function incidentItem(incident) {
  const where = incident.districts.join(", ");
  return h("li", { class: `feed-item sev-edge-${incident.severity}`, dataset: { incident: incident.id, state: incident.state, devices: incident.devices.join(" ") } },
    h("a", { href: `#/incident/${encodeURIComponent(incident.id)}` },
      h("span", { class: "feed-head" }, severityBadge(incident.severity), " ",
        h("span", { class: "feed-title" }, incident.title)),
      h("span", { class: "feed-meta" },
        h("span", { class: "state" }, t(`state.${incident.state}`)), " · ",
        t(`category.${incident.category}`), where ? ` · ${where}` : "",
        incident.team_id ? ` · ${incident.team_id}` : "", " · ",
        h("time", { datetime: new Date(incident.updated_at).toISOString(), title: formatDateTime(incident.updated_at) },
          formatTime(incident.updated_at)))));
}

function alertItem(alert) {
  return h("li", { class: `feed-item sev-edge-${alert.severity}`, dataset: { alert: alert.id } },
    h("span", { class: "feed-head" }, severityBadge(alert.severity), " ",
      h("span", { class: "feed-title" }, `${alert.rule_id} · ${alert.subject}`)),
    h("span", { class: "feed-meta" }, alert.state, " · ",
      h("time", { datetime: new Date(alert.updated_at).toISOString() }, formatTime(alert.updated_at))));
}

export function renderFeed(element) {
  const incidents = filtered().slice(0, FEED_LIMIT);
  fill(element, incidents.length ? incidents.map(incidentItem) : h("li", { class: "empty" }, t("feed.empty")));
}

export function renderAlerts(element) {
  const alerts = [...store.alerts.values()].sort((a, b) => b.updated_at - a.updated_at).slice(0, FEED_LIMIT);
  fill(element, alerts.length ? alerts.map(alertItem) : h("li", { class: "empty" }, t("feed.alerts_empty")));
}
