// Incident detail: state, timeline, dispatch attempts, the triggering series with the rule's
// thresholds, and the operator's actions (acknowledge, reassign, silence the devices, cancel
// as a false alarm, add a note). Every action goes through the API; the live stream shows it
// on every other open dashboard.

import { api, showError } from "../api.js";
import { seriesChart } from "../chart.js";
import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { severityBadge, severityColour } from "../severity.js";
import { formatDateTime } from "../time.js";
import { fetchDevice, fetchIncident, isActive, putIncident, store } from "./store.js";

const DISPATCH_KINDS = new Set(["dispatched", "notified", "escalated", "paged", "reassigned"]);
const ACK_STATES = new Set(["new", "dispatched"]);
const SILENCE_OPTIONS = [["30m", 30], ["1h", 60], ["4h", 240], ["24h", 1440]];
const HOUR_MS = 3_600_000;
// a plain operand: a number, or attr(name[, default]) with an optional "+/- number"; an
// operand that goes on with more arithmetic is not drawn (it could not be read right)
const OPERAND = String.raw`(-?\d+(?:\.\d+)?|attr\(\s*(\w+)\s*(?:,\s*(-?\d+(?:\.\d+)?))?\s*\)(?:\s*([+-])\s*(\d+(?:\.\d+)?))?)(?![\d.])(?!\s*[-+*/(])`;
const COMPARISON = String.raw`value\s*(>=|>|<=|<)\s*${OPERAND}`;

function may(...roles) {
  return roles.includes(store.caller.role);
}

/** The value of an OPERAND match [whole, attr name, default, sign, offset] for `device`. */
function operand([whole, name, fallback, sign, offset], device) {
  if (name === undefined) return Number(whole);
  const base = device?.attributes?.[name] ?? (fallback === undefined ? null : Number(fallback));
  if (base === null) return null;
  const shift = offset === undefined ? 0 : Number(offset) * (sign === "-" ? -1 : 1);
  return Math.round((base + shift) * 1e4) / 1e4;
}

function lines(text, pattern, device, make) {
  const found = [];
  for (const m of (text || "").matchAll(new RegExp(pattern, "g"))) {
    const value = operand(m.slice(-5), device);
    if (value !== null) found.push(make(m, value));
  }
  return found;
}

/** The horizontal lines of a rule for one device: its `when`, its severity cut-offs, its clear. */
export function thresholdsOf(rule, device) {
  const plain = ["red", "orange", "yellow", "blue"].includes(rule.severity) ? rule.severity : "orange";
  return [
    ...lines(rule.when, COMPARISON, device, (m, value) =>
      ({ value, label: t("incident.threshold", { expr: `${m[1]} ${value}` }), colour: severityColour(plain) })),
    ...lines(rule.severity, String.raw`(red|orange|yellow|blue)\s+if\s+${COMPARISON}`, device, (m, value) =>
      ({ value, label: t("incident.threshold", { expr: `${m[2]} ${value}` }), colour: severityColour(m[1]) })),
    ...lines(rule.clear_when, COMPARISON, device, (m, value) =>
      ({ value, label: t("incident.clear", { expr: `${m[1]} ${value}` }), colour: "#5d6d7e" })),
  ];
}

function timeline(incident) {
  return h("ol", { class: "timeline", id: "incident-timeline" }, [...incident.timeline].reverse().map((entry) =>
    h("li", { dataset: { kind: entry.kind } },
      h("time", {}, formatDateTime(entry.at, { seconds: true })), " ",
      h("strong", {}, t(`state.${entry.kind}`) === `state.${entry.kind}` ? entry.kind : t(`state.${entry.kind}`)), " · ",
      h("span", { class: "actor" }, entry.actor), entry.detail ? ` · ${entry.detail}` : "")));
}

function dispatchTable(incident) {
  const attempts = incident.timeline.filter((e) => DISPATCH_KINDS.has(e.kind));
  if (!attempts.length) return h("p", {}, t("incident.no_dispatch"));
  return h("table", { class: "dispatch" }, h("tbody", {}, attempts.map((e) =>
    h("tr", {}, h("td", {}, formatDateTime(e.at, { seconds: true })), h("td", {}, e.kind), h("td", {}, e.detail)))));
}

async function drawSeries(element, incident) {
  const alerts = await Promise.all(incident.alert_ids.slice(0, 5).map((id) => api(`/alerts/${encodeURIComponent(id)}`)));
  const trigger = alerts.find((a) => a.device_id && a.metric);
  if (!trigger) {
    fill(element, h("p", {}, t("incident.no_series")));
    return;
  }
  const start = new Date(Math.min(trigger.started_at, incident.opened_at) - HOUR_MS).toISOString();
  const [device, series] = await Promise.all([fetchDevice(trigger.device_id).catch(() => null), // its attributes
    api(`/devices/${encodeURIComponent(trigger.device_id)}/readings`, { query: { metric: trigger.metric, since: start } })]);
  const rule = store.rules.get(trigger.rule_id);
  const marks = alerts.filter((a) => a.device_id === trigger.device_id && a.metric === trigger.metric)
    .map((a) => ({ at: a.started_at, value: null, colour: severityColour(a.severity), label: a.rule_id }));
  const chart = h("div", { class: "series-chart" });
  fill(element, h("p", { class: "series-label" }, `${trigger.device_id} · ${trigger.metric} · ${trigger.rule_id}`), chart);
  seriesChart(chart, series.points, { label: trigger.metric, unit: series.unit, marks,
    thresholds: rule ? thresholdsOf(rule, device) : [] });
}

async function act(incident, path, json) {
  try {
    const changed = await api(`/incidents/${encodeURIComponent(incident.id)}/${path}`, { method: "POST", json });
    putIncident(changed);
    return changed;
  } catch (error) {
    showError(error);
    return null;
  }
}

function form(className, fields, submitLabel, onSubmit) {
  const element = h("form", { class: className }, fields, h("button", { type: "submit" }, submitLabel));
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = element.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await onSubmit(new FormData(element));
      element.reset();
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

async function silenceDevices(incident, minutes) {
  const ends = Date.now() + minutes * 60_000;
  try {
    await Promise.all(incident.devices.map((device) => api("/silences", { method: "POST", json: {
      matchers: [{ field: "device", value: device }], starts_at: new Date().toISOString(),
      ends_at: new Date(ends).toISOString(), reason: `incident ${incident.id}` } })));
  } catch (error) {
    showError(error);
    return;
  }
  await act(incident, "notes", { text: t("incident.silenced_note", { devices: incident.devices.join(", "), until: formatDateTime(ends) }) });
}

function actions(incident) {
  if (!may("admin", "operator") || !isActive(incident)) return null;
  const parts = [];
  if (ACK_STATES.has(incident.state)) {
    parts.push(h("button", { type: "button", id: "action-acknowledge", onclick: () => act(incident, "acknowledge") }, t("incident.acknowledge")));
  }
  parts.push(form("reassign", h("label", {}, t("incident.reassign_to"), " ",
    h("select", { name: "team_id", required: true }, store.teams.filter((team) => team.id !== incident.team_id)
      .map((team) => new Option(team.name || team.id, team.id)))), t("incident.reassign"),
  (data) => act(incident, "reassign", { team_id: data.get("team_id") })));
  if (incident.devices.length) {
    parts.push(form("silence", h("label", {}, t("incident.silence_for"), " ",
      h("select", { name: "minutes" }, SILENCE_OPTIONS.map(([key, m]) => new Option(t(`duration.${key}`), m)))),
    t("incident.silence"), (data) => silenceDevices(incident, Number(data.get("minutes")))));
  }
  parts.push(form("note", h("label", {}, t("incident.note_text"), h("textarea", { name: "text", required: true, maxlength: 2000, rows: 2 })),
    t("incident.note"), (data) => act(incident, "notes", { text: data.get("text") })));
  parts.push(form("cancel", h("label", {}, t("incident.cancel_reason"), h("input", { name: "detail", required: true, maxlength: 2000 })),
    t("incident.cancel"), (data) => act(incident, "transition", { to: "cancelled", detail: data.get("detail") })));
  return h("section", { class: "actions", "aria-labelledby": "actions-title" }, h("h3", { id: "actions-title" }, t("incident.actions")), parts);
}

function actionsKey(incident) {
  return `${isActive(incident)}:${ACK_STATES.has(incident.state)}:${incident.team_id}`;
}

function title(incident) {
  return [severityBadge(incident.severity), " ", incident.title];
}

function facts(incident) {
  return h("dl", { class: "facts", id: "incident-facts" },
    h("dt", {}, t("filters.state")), h("dd", { id: "incident-state", dataset: { state: incident.state } }, t(`state.${incident.state}`)),
    h("dt", {}, t("incident.team")), h("dd", { id: "incident-team" }, incident.team_id ?? "–"),
    h("dt", {}, t("incident.opened")), h("dd", {}, formatDateTime(incident.opened_at, { seconds: true })),
    h("dt", {}, t("incident.districts")), h("dd", {}, [...incident.districts, ...incident.grids].join(", ") || "–"),
    h("dt", {}, t("incident.devices")), h("dd", { id: "incident-devices" }, incident.devices.join(", ") || "–"));
}

/** Show the incident `id` in `element` (fetched with its timeline); `map` rings its devices. */
export async function showIncident(element, id, map) {
  const incident = await fetchIncident(id);
  const series = h("div", { class: "series" }, "…");
  fill(element,
    h("p", {}, h("a", { href: "#/", class: "back" }, "← ", t("incident.back"))),
    h("h2", { id: "incident-title", tabindex: "-1" }, title(incident)), facts(incident),
    h("div", { id: "incident-actions", dataset: { key: actionsKey(incident) } }, actions(incident)),
    h("h3", {}, t("incident.series")), series,
    h("h3", {}, t("incident.dispatch")), h("div", { id: "incident-dispatch" }, dispatchTable(incident)),
    h("h3", {}, t("incident.timeline")), timeline(incident));
  element.dataset.incident = id;
  element.querySelector("#incident-title").focus();
  map.focusDevices(incident.devices, incident.severity);
  drawSeries(series, incident).catch(showError);
}

/** The shown incident changed (a live event or an action): update it in place, keeping what
 * the user is typing in the action forms unless the actions themselves changed. */
export function updateIncident(element, incident) {
  fill(element.querySelector("#incident-title"), title(incident)); // in place: it may have focus
  element.querySelector("#incident-facts")?.replaceWith(facts(incident));
  if (incident.timeline) {
    element.querySelector("#incident-timeline")?.replaceWith(timeline(incident));
    fill(element.querySelector("#incident-dispatch"), dispatchTable(incident));
  }
  const holder = element.querySelector("#incident-actions");
  if (holder && holder.dataset.key !== actionsKey(incident)) {
    holder.dataset.key = actionsKey(incident);
    fill(holder, actions(incident));
  }
}
