// The wall screen (/wall): read-only, for the video wall of an operations center. Nobody
// touches it: the city map with the active incidents, counters per severity and district, a
// ticker of the newest warnings, devices online / offline and the ingest rate, kept current by
// the live stream. When the server goes away it says so, reconnects with backoff and, once
// back, loads its whole state again by itself.
//
// It authenticates with a read-only API key: an admin creates one with the viewer role
// (POST /api/v1/api-keys, or `urbanwatch demo` prints one) and opens /wall#key=<key> once on
// the wall's browser; the key moves to that browser's localStorage and out of the address bar,
// so it survives reloads and browser restarts. Without a key the wall uses this tab's login.
// Either way it sees exactly what the API lets that key or user see.

import "./wall/labels.js";
import { ApiError, requireLogin, useApiKey } from "./api.js";
import { h, fill } from "./dom.js";
import { applyI18n, onLangChange, t } from "./i18n.js";
import { CityMap } from "./map.js";
import { WARNING_LEVELS, severityBadge, severityRank, severityShape } from "./severity.js";
import { formatDateTime, formatTime, loadTimeZone } from "./time.js";
import { watchIngestRate } from "./wall/ingest.js";
import { currentDeviceStates, isActive, loadAll, onChange, startLive, store } from "./dashboard/store.js";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "urbanwatch.wallKey";
const RETRY_MS = [1000, 2000, 5000, 10000, 30000];
const RELOAD_EVERY_MS = 5 * 60 * 1000; // a full reload now and then: nothing can drift for long
const TICKER_SIZE = 15;

let map;
let shownStates = new Map();
let rate = null;
let areasDrawn = false;

/** The wall key: from #key=… (then kept, and taken out of the address bar) or kept before. */
function wallKey() {
  const given = new URLSearchParams(location.hash.slice(1)).get("key");
  if (given) {
    localStorage.setItem(KEY_STORE, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem(KEY_STORE);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setState(state) {
  document.body.dataset.state = state;
}

function refused(error) {
  return error instanceof ApiError && (error.status === 401 || error.status === 403);
}

function sayRefused() {
  setState("refused");
  document.body.append(h("p", { class: "wall-banner", role: "alert" }, t("wall.key_refused")));
}

/** Load everything from the REST API, retrying with backoff while the server is away. */
async function load() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await loadAll();
      return;
    } catch (error) {
      if (refused(error)) {
        sayRefused();
        throw error;
      }
      await sleep(RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
    }
  }
}

let lost = false; // the stream broke since the state was last loaded

function setLiveStatus(state) {
  const element = $("live-status");
  element.dataset.state = state;
  element.textContent = t(`live.${state}`);
  if (document.body.dataset.state !== "refused") setState(state);
  if (state === "offline") lost = true;
  // back after a break (a server restart, a network cut): what happened meanwhile is loaded anew
  if (state === "live" && lost) {
    lost = false;
    load().catch(() => {});
  }
}

function activeIncidents() {
  return [...store.incidents.values()].filter(isActive);
}

function renderCounters(active) {
  const counts = Object.fromEntries(WARNING_LEVELS.map((s) => [s, 0]));
  for (const incident of active) if (incident.severity in counts) counts[incident.severity] += 1;
  fill($("severity-counters"),
    WARNING_LEVELS.map((s) => h("li", { class: `sev-${s}`, dataset: { severity: s } },
      h("span", { class: "n" }, counts[s]),
      h("span", { class: "label" }, h("span", { "aria-hidden": "true" }, severityShape(s)), " ", t(`severity.${s}`)))),
    h("li", { class: "total", dataset: { severity: "total" } },
      h("span", { class: "n" }, active.length), h("span", { class: "label" }, t("wall.total"))));
}

function renderDistricts(active) {
  const districts = new Map(store.areas.features
    .filter((f) => f.properties.kind === "district")
    .map((f) => [f.properties.id, { name: f.properties.name || f.properties.id, n: 0, worst: null }]));
  for (const incident of active) {
    for (const id of incident.districts) {
      const row = districts.get(id) ?? { name: id, n: 0, worst: null };
      row.n += 1;
      if (!row.worst || severityRank(incident.severity) > severityRank(row.worst)) row.worst = incident.severity;
      districts.set(id, row);
    }
  }
  const rows = [...districts.entries()].sort((a, b) => b[1].n - a[1].n || a[1].name.localeCompare(b[1].name));
  fill($("district-counters").tBodies[0], rows.map(([id, row]) =>
    h("tr", { dataset: { district: id, count: row.n } },
      h("th", { scope: "row" }, row.name),
      h("td", {}, row.worst ? severityBadge(row.worst) : h("span", { class: "none" }, t("wall.no_incident"))),
      h("td", {}, row.n))));
}

function renderHealth() {
  const counts = { ok: 0, alerting: 0, offline: 0, maintenance: 0 };
  for (const { state } of shownStates.values()) if (state in counts) counts[state] += 1;
  const total = counts.ok + counts.alerting + counts.offline + counts.maintenance;
  const line = (metric, label, value, bad = false) => [
    h("dt", {}, t(label)), h("dd", { dataset: { metric, bad: String(bad) } }, value)];
  fill($("health"),
    line("devices", "wall.devices", total.toLocaleString()),
    line("online", "wall.online", (counts.ok + counts.alerting).toLocaleString()),
    line("offline", "wall.offline", counts.offline.toLocaleString(), counts.offline > 0),
    line("maintenance", "wall.maintenance", counts.maintenance.toLocaleString()),
    line("rate", "wall.rate", rate === null ? "–" : Math.round(rate).toLocaleString(), rate === null));
}

function renderTicker(active) {
  const newest = [...active].sort((a, b) => b.opened_at - a.opened_at).slice(0, TICKER_SIZE);
  const item = (incident, copy) => h("li", {
    dataset: copy ? {} : { incident: incident.id, devices: incident.devices.join(" ") },
    "aria-hidden": copy ? "true" : null },
    severityBadge(incident.severity),
    h("span", { class: "when" }, formatTime(incident.opened_at)),
    h("span", { class: "what" }, incident.title),
    h("span", { class: "where" }, incident.districts.join(" · ")));
  const ticker = $("ticker");
  if (!newest.length) {
    ticker.dataset.scroll = "false";
    fill(ticker, h("li", { class: "empty" }, t("wall.quiet")));
    return;
  }
  fill(ticker, newest.map((i) => item(i, false)));
  // longer than the screen: it scrolls, a second copy following the first for a seamless loop
  const scrolls = ticker.scrollWidth > ticker.parentElement.clientWidth;
  if (scrolls) ticker.append(...newest.map((i) => item(i, true)));
  ticker.dataset.scroll = String(scrolls);
}

function drawDevices() {
  shownStates = currentDeviceStates();
  map.setDevices([...store.devices.values()], shownStates);
}

function updateDeviceStates() {
  const states = currentDeviceStates();
  for (const [id, state] of states) {
    const old = shownStates.get(id);
    if (!old || old.state !== state.state || old.severity !== state.severity) map.setDeviceState(id, state);
  }
  shownStates = states;
}

function render() {
  const active = activeIncidents();
  renderCounters(active);
  renderDistricts(active);
  renderHealth();
  renderTicker(active);
  map.highlightIncidents(active);
  document.body.dataset.updated = String(Date.now());
}

function onStoreChange(batch) {
  if (batch.all) {
    if (!areasDrawn || store.areas.features.length !== Number(map.element.dataset.areas)) {
      map.setAreas(store.areas);
      areasDrawn = true;
    }
    drawDevices();
  } else {
    for (const id of batch.devices) { // added since the wall loaded (the store looks them up)
      const device = store.devices.get(id);
      const state = currentDeviceStates().get(id);
      shownStates.set(id, state);
      map.addDevice(device, state);
    }
    if (batch.alerts) updateDeviceStates();
  }
  render();
}

function tick() {
  $("clock").textContent = formatDateTime(Date.now(), { seconds: true });
}

async function main() {
  applyI18n();
  const key = wallKey();
  if (key) useApiKey(key);
  else await requireLogin();
  await loadTimeZone().catch(() => {}); // the city's zone once the server answers; Shanghai until
  tick();
  setInterval(tick, 1000);
  map = new CityMap($("map"));
  for (const handler of ["dragging", "scrollWheelZoom", "doubleClickZoom", "boxZoom", "keyboard", "touchZoom"]) {
    map.map[handler]?.disable();
  }
  onChange(onStoreChange);
  startLive(setLiveStatus); // first: no event falls between the load and the stream
  await load();
  watchIngestRate((perSecond) => {
    rate = perSecond;
    renderHealth();
  });
  setInterval(() => load().catch(() => {}), RELOAD_EVERY_MS);
  window.addEventListener("resize", () => {
    map.resize();
    map.fit();
    render();
  });
  onLangChange(() => {
    setLiveStatus($("live-status").dataset.state);
    render();
  });
}

main().catch((error) => {
  if (refused(error)) return; // said on the screen already
  console.error(error);
});
