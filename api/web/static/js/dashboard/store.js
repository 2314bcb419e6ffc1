// What the dashboard knows: incidents, open alerts, devices, rules, areas and teams, loaded
// from the REST API and kept current by the live stream. Views subscribe with onChange().

import { api, apiAll } from "../api.js";
import { connectLive } from "../live.js";
import { deviceStates, offlineRuleIds } from "../map.js";

export const ACTIVE_STATES = ["new", "dispatched", "reassigned", "acknowledged", "en_route", "on_scene"];
export const FINAL_STATES = ["resolved", "closed", "cancelled"]; // shown when picked
const OPEN_ALERT_STATES = new Set(["firing", "acknowledged"]);

export const store = {
  caller: null,
  incidents: new Map(), // id -> incident (IncidentPublic, or IncidentDetail once fetched)
  alerts: new Map(), // open alerts: id -> alert
  devices: new Map(),
  rules: new Map(),
  offlineRules: new Set(),
  areas: { type: "FeatureCollection", features: [] },
  teams: [], // [{id, name}]
};

const listeners = [];
const changes = { incidents: new Set(), devices: new Set(), alerts: false, all: false };
let pending = false;

/** listener({incidents: Set of ids changed, devices: Set of ids added or changed,
 * alerts: bool, all: bool}) after every change. */
export function onChange(listener) {
  listeners.push(listener);
}

function changed({ incident = null, device = null, alerts = false, all = false }) {
  if (incident) changes.incidents.add(incident);
  if (device) changes.devices.add(device);
  changes.alerts ||= alerts;
  changes.all ||= all;
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const batch = { incidents: new Set(changes.incidents), devices: new Set(changes.devices),
      alerts: changes.alerts, all: changes.all };
    changes.incidents.clear();
    changes.devices.clear();
    changes.alerts = changes.all = false;
    for (const listener of listeners) listener(batch);
  });
}

export function isActive(incident) {
  return ACTIVE_STATES.includes(incident.state);
}

/** Each device's state for the map (from devices, open alerts and the offline rules). */
export function currentDeviceStates() {
  return deviceStates(store.devices.values(), store.alerts.values(), store.offlineRules);
}

async function loadIncidents(states, limit = 1000) {
  for (const incident of await apiAll("/incidents", { state: states }, limit)) store.incidents.set(incident.id, incident);
}

/** Every device as the map draws it ({id, type, district, grid, lat, lon, status}): one call
 * that answers in columns (GET /map/devices); the other fields come with fetchDevice(). */
async function loadDevices() {
  const columns = await api("/map/devices");
  const names = ["id", "type", "district", "grid", "lat", "lon", "status"];
  return columns.id.map((_, i) => Object.fromEntries(names.map((name) => [name, columns[name][i]])));
}

/** One device with all its fields (attributes too), from the API. */
export function fetchDevice(id) {
  return api(`/devices/${encodeURIComponent(id)}`);
}

/** Recent incidents in a final state (the feed shows them when that state is picked). */
export async function loadFinished(state) {
  const page = await api("/incidents", { query: { state, limit: 200 } });
  for (const incident of page.items) store.incidents.set(incident.id, incident);
  changed({ all: true });
}

/** Keep `device` (as the API returned it) and tell the views. */
export function putDevice(device) {
  store.devices.set(device.id, device);
  changed({ device: device.id });
}

const asked = new Set(); // devices looked up once already

/** Fetch the devices of `ids` this page does not know yet (added since it loaded). */
function learnDevices(ids) {
  for (const id of ids) {
    if (store.devices.has(id) || asked.has(id)) continue;
    asked.add(id);
    fetchDevice(id).then(putDevice).catch(() => {});
  }
}

/** Keep `incident` (as the API returned it) and tell the views. */
export function putIncident(incident) {
  store.incidents.set(incident.id, incident);
  learnDevices(incident.devices ?? []);
  changed({ incident: incident.id });
}

/** The incident with its timeline, fresh from the API (kept in the store). */
export async function fetchIncident(id) {
  const incident = await api(`/incidents/${encodeURIComponent(id)}`);
  putIncident(incident);
  return incident;
}

/** Everything from the REST API (at start, and after a gap in the live stream): incidents,
 * alerts, rules, areas and teams first (the feed and counters show), then the devices. */
export async function loadAll() {
  const devices = loadDevices();
  devices.catch(() => {}); // awaited below; if the rest fails first, that failure is the one thrown
  const [rules, alerts, areas, routing] = await Promise.all([
    api("/rules"), apiAll("/alerts", { state: [...OPEN_ALERT_STATES] }), api("/areas"), api("/routing"),
    loadIncidents(ACTIVE_STATES),
  ]);
  store.rules = new Map(rules.items.map((r) => [r.id, r]));
  store.offlineRules = offlineRuleIds(rules.items);
  store.alerts = new Map(alerts.map((a) => [a.id, a]));
  store.areas = areas;
  store.teams = routing.handlers.flatMap((handler) => handler.teams.map(({ id, name }) => ({ id, name })));
  changed({ all: true });
  store.devices = new Map((await devices).map((d) => [d.id, d]));
  changed({ all: true });
}

function onAlertEvent(event) {
  if (OPEN_ALERT_STATES.has(event.state)) {
    const known = store.alerts.get(event.alert_id) ?? {};
    const isDevice = !event.subject.includes(":");
    store.alerts.set(event.alert_id, {
      ...known, id: event.alert_id, rule_id: event.rule_id, subject: event.subject, state: event.state,
      severity: event.severity, updated_at: event.at, started_at: known.started_at ?? event.at,
      device_id: isDevice ? event.subject : known.device_id ?? null,
    });
  } else {
    store.alerts.delete(event.alert_id);
  }
  if (store.alerts.get(event.alert_id)?.device_id) learnDevices([event.subject]);
  changed({ alerts: true });
}

const fetching = new Map(); // incident id -> "again" when changed while being fetched

/** Fetch the incident again, once at a time (its events come in bursts). */
function refresh(id) {
  if (fetching.has(id)) {
    fetching.set(id, "again");
    return;
  }
  fetching.set(id, "once");
  fetchIncident(id).catch(() => {}).finally(() => {
    const again = fetching.get(id) === "again";
    fetching.delete(id);
    if (again) refresh(id);
  });
}

function onIncidentEvent(event) {
  const known = store.incidents.get(event.incident_id);
  if (known) { // shown at once; the fetch brings the rest (timeline, devices)
    store.incidents.set(event.incident_id, { ...known, state: event.state, severity: event.severity,
      team_id: event.team_id, updated_at: event.at });
    changed({ incident: event.incident_id });
  }
  refresh(event.incident_id);
}

/** Open the live stream (before loadAll: nothing falls between the two). */
export function startLive(onStatus) {
  return connectLive({
    onEvent(event) {
      if (event.type === "alert") onAlertEvent(event);
      else if (event.type === "incident") onIncidentEvent(event);
      else if (event.type === "dispatch" && event.incident_id) refresh(event.incident_id); // its timeline
    },
    onGap: () => loadAll(),
    onStatus,
  });
}
