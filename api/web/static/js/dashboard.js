// The operations dashboard (/): for operators, admins and viewers. The map and the live feed,
// incident detail (#/incident/ID), maintenance and silences (#/maintenance), rules and
// backtests (#/rules) and the supervision view (#/reports). Everything through the public API.

import "./dashboard/labels.js";
import { logout, requireLogin, showError } from "./api.js";
import { h, fill } from "./dom.js";
import { applyI18n, languageSwitch, onLangChange, t } from "./i18n.js";
import { CityMap, DEVICE_STATES, markerStyle } from "./map.js";
import { loadTimeZone } from "./time.js";
import { showDevice } from "./dashboard/device.js";
import { renderAlerts, renderCounters, renderFeed, renderFilters } from "./dashboard/feed.js";
import { showIncident, updateIncident } from "./dashboard/incident.js";
import { showMaintenance } from "./dashboard/maintenance.js";
import { showReports } from "./dashboard/reports.js";
import { showRules } from "./dashboard/rules.js";
import { currentDeviceStates, isActive, loadAll, onChange, startLive, store } from "./dashboard/store.js";

const $ = (id) => document.getElementById(id);
const VIEWS = { maintenance: showMaintenance, rules: showRules, reports: showReports };
let map;
let shownStates = new Map();
const seen = new Set(); // incidents already announced

function legend() {
  const swatch = (style) => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("aria-hidden", "true");
    const circle = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    for (const [name, value] of Object.entries({ cx: 10, cy: 10, r: style.radius, stroke: style.color, "stroke-width": style.weight,
      fill: style.fillOpacity ? style.fillColor : "none", "stroke-dasharray": style.dashArray ?? "" })) circle.setAttribute(name, value);
    svg.append(circle);
    return svg;
  };
  fill($("legend"), DEVICE_STATES.map((state) => h("li", {}, swatch(markerStyle(state, "red")), t(`device.${state}`))));
}

function setLiveStatus(state) {
  const element = $("live-status");
  element.dataset.state = state;
  element.textContent = t(`live.${state}`);
}

function drawDevices() {
  shownStates = currentDeviceStates();
  map.setDevices([...store.devices.values()], shownStates);
  $("device-ids").replaceChildren(); // filled when the search box is first used: 10,000 options cost
}

/** The search box's suggestions: every device id (once the box is used). */
function suggestDevices() {
  const list = $("device-ids");
  if (list.childElementCount < store.devices.size) fill(list, [...store.devices.keys()].map((id) => new Option(id, id)));
}

function addDevice(device) {
  const state = currentDeviceStates().get(device.id);
  shownStates.set(device.id, state);
  map.addDevice(device, state);
  if ($("device-ids").childElementCount) suggestDevices();
}

function updateDeviceStates() {
  const states = currentDeviceStates();
  for (const [id, state] of states) {
    const old = shownStates.get(id);
    if (!old || old.state !== state.state || old.severity !== state.severity) map.setDeviceState(id, state);
  }
  shownStates = states;
}

function announce(ids) {
  for (const id of ids) {
    const incident = store.incidents.get(id);
    if (!incident || seen.has(id)) continue;
    seen.add(id);
    if (isActive(incident)) $("announce").textContent = t("feed.new_event", { title: incident.title });
  }
}

function renderSituation() {
  renderCounters($("counters"));
  renderFeed($("feed"));
  renderAlerts($("alerts"));
  map.highlightIncidents([...store.incidents.values()].filter(isActive));
}

function onStoreChange(batch) {
  if (batch.all) {
    if (map.areas !== store.areas) map.setAreas(store.areas); // once per load: keeps the view
    drawDevices();
    renderFilters($("filters"), renderSituation);
    for (const id of store.incidents.keys()) seen.add(id);
  } else {
    for (const id of batch.devices) addDevice(store.devices.get(id));
    if (batch.alerts) updateDeviceStates();
  }
  announce(batch.incidents);
  renderSituation();
  const detail = $("incident");
  if (!detail.hidden && batch.incidents.has(detail.dataset.incident)) {
    updateIncident(detail, store.incidents.get(detail.dataset.incident));
  }
}

async function route() {
  const [, view = "", id] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) ?? [];
  const name = VIEWS[view] ? view : "ops";
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const main of document.querySelectorAll("main")) main.hidden = main.id !== `view-${name}`;
  if (name !== "ops") {
    await VIEWS[name]($(`view-${name}`));
    return;
  }
  map.resize();
  const detail = $("incident");
  const showing = view === "incident" && id;
  detail.hidden = !showing;
  $("feed-pane").hidden = Boolean(showing);
  $("filters").hidden = Boolean(showing);
  if (showing) await showIncident(detail, decodeURIComponent(id), map);
  else {
    map.focusDevices([]);
    detail.dataset.incident = "";
  }
}

function wireHeader() {
  applyI18n();
  $("lang").append(languageSwitch());
  $("logout").addEventListener("click", logout);
  $("find-device").device.addEventListener("focus", suggestDevices);
  $("find-device").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = event.target.device.value.trim();
    if (id) showDevice($("device-panel"), id).catch(showError);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("device-panel").hidden) $("device-panel").hidden = true;
  });
}

async function main() {
  wireHeader();
  setLiveStatus("connecting");
  [store.caller] = await Promise.all([requireLogin(["admin", "operator", "viewer"]), loadTimeZone()]);
  $("who").textContent = `${store.caller.subject} (${store.caller.role})`;
  map = new CityMap($("map"), { onDeviceClick: (device) => showDevice($("device-panel"), device.id).catch(showError) });
  legend();
  onChange(onStoreChange);
  startLive(setLiveStatus); // first: no event falls between the load and the stream
  await loadAll();
  onLangChange(() => {
    legend();
    setLiveStatus($("live-status").dataset.state);
    renderFilters($("filters"), renderSituation);
    renderSituation();
    route().catch(showError);
  });
  window.addEventListener("hashchange", () => route().catch(showError));
  await route();
}

main().catch(showError);
