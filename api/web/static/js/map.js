// The city map: the stored districts and grid cells (GET /api/v1/areas, GeoJSON) drawn on a
// plain background (no tile server is reachable in an operations center), devices as markers
// coloured by state, areas with active incidents filled in their severity colour.
// Areas are SVG paths; device markers are drawn on a canvas (10,000 devices stay fluid). Each
// device state also differs in size and outline, and every marker has a tooltip in words.

import * as L from "../vendor/leaflet/leaflet-src.esm.js";
import { t } from "./i18n.js";
import { severityColour, severityLabel, severityRank } from "./severity.js";

export const DEVICE_STATES = ["ok", "alerting", "offline", "maintenance"];
// Leaflet puts a string tooltip in as HTML: names from the API go in as text instead
function text(value) {
  const span = document.createElement("span");
  span.textContent = value;
  return span;
}

const STYLES = {
  ok: { radius: 4, color: "#2f5d50", weight: 1, fillColor: "#4d9078", fillOpacity: 0.8 },
  offline: { radius: 6, color: "#333", weight: 2, dashArray: "2 3", fillOpacity: 0 },
  maintenance: { radius: 5, color: "#5b2c6f", weight: 2, dashArray: "4 2", fillColor: "#c39bd3", fillOpacity: 0.9 },
  retired: { radius: 3, color: "#999", weight: 1, fillOpacity: 0 },
};

/** The style of a device marker in `state` (alerting: in its severity's colour). */
export function markerStyle(state, severity) {
  if (state === "alerting") {
    return { radius: 8, color: "#000", weight: 2, fillColor: severityColour(severity), fillOpacity: 0.95 };
  }
  return STYLES[state] ?? STYLES.ok;
}

/** The ids of the rules that judge staleness: their alerts mean "offline". */
export function offlineRuleIds(rules) {
  return new Set(rules.filter((rule) => /\bstale\s*\(/.test(rule.when)).map((rule) => rule.id));
}

/**
 * Each device's state: {state, severity} by device id, from the devices, their open alerts
 * (firing or acknowledged, from GET /alerts) and the offline rules.
 */
export function deviceStates(devices, openAlerts, offlineRules) {
  const states = new Map();
  for (const device of devices) {
    const base = device.status === "active" ? "ok" : device.status;
    states.set(device.id, { state: base, severity: null });
  }
  for (const alert of openAlerts) {
    const current = alert.device_id && states.get(alert.device_id);
    if (!current || current.state === "maintenance" || current.state === "retired") continue;
    if (offlineRules.has(alert.rule_id)) {
      if (current.state === "ok") states.set(alert.device_id, { state: "offline", severity: null });
    } else if (alert.severity !== "info" && severityRank(alert.severity) > severityRank(current.severity ?? "info")) {
      states.set(alert.device_id, { state: "alerting", severity: alert.severity });
    }
  }
  return states;
}

export class CityMap {
  /** A map in `element`; onDeviceClick(device) when a marker is clicked. */
  constructor(element, { onDeviceClick = () => {} } = {}) {
    this.element = element;
    this.onDeviceClick = onDeviceClick;
    this.map = L.map(element, { attributionControl: false, zoomSnap: 0.25, keyboard: true });
    this.map.createPane("devices").style.zIndex = 450; // above the areas' fill
    this.canvas = L.canvas({ padding: 0.2, pane: "devices" }); // thousands of markers
    this.map.setView([39.9, 116.4], 11);
    this.areaLayer = L.geoJSON(null, {
      style: (f) => this.areaStyle(f),
      onEachFeature: (f, layer) => {
        if (f.properties.kind === "district") {
          layer.bindTooltip(text(f.properties.name || f.properties.id), { permanent: true, direction: "center", className: "area-label" });
        }
      },
    }).addTo(this.map);
    // one set of handlers for every marker (a featureGroup hears its markers' events)
    this.deviceLayer = L.featureGroup().addTo(this.map)
      .on("click", ({ layer }) => this.onDeviceClick(this.devices.get(layer.deviceId)))
      .on("mouseover", ({ layer }) => layer.bindTooltip(this.tooltip(layer.deviceId)).openTooltip())
      .on("mouseout", ({ layer }) => layer.unbindTooltip());
    this.focusLayer = L.layerGroup().addTo(this.map);
    this.markers = new Map();
    this.devices = new Map();
    this.hot = new Map(); // area id -> most severe active incident severity
    element.setAttribute("aria-label", t("map.label"));
  }

  areaStyle(feature) {
    const { id, kind } = feature.properties;
    const severity = this.hot.get(id);
    const base = kind === "district"
      ? { color: "#56606b", weight: 2, fillColor: "#e8ecef", fillOpacity: 0.5 }
      : { color: "#9aa5af", weight: 0.5, fillOpacity: 0 };
    if (!severity) return base;
    return { ...base, color: severityColour(severity), weight: kind === "district" ? 3 : 2,
             fillColor: severityColour(severity), fillOpacity: 0.3, dashArray: "6 3" };
  }

  /** Draw the stored areas (a GeoJSON FeatureCollection) and fit the view to them. */
  setAreas(collection) {
    this.areas = collection;
    this.areaLayer.clearLayers();
    // grid cells first, districts on top: their outlines stay visible
    const order = (f) => (f.properties.kind === "district" ? 1 : 0);
    this.areaLayer.addData({ ...collection, features: [...collection.features].sort((a, b) => order(a) - order(b)) });
    this.element.dataset.areas = String(collection.features.length);
    this.fit();
  }

  /** Draw devices (from GET /devices) in their states (a Map from deviceStates()). */
  setDevices(devices, states = new Map()) {
    this.deviceLayer.clearLayers();
    this.markers.clear();
    this.devices.clear();
    for (const device of devices) this.place(device, states.get(device.id));
    this.element.dataset.devices = String(this.markers.size);
    if (!this.areaLayer.getLayers().length) this.fit();
  }

  /** Draw one more device (or redraw a known one) in `state` (default ok). */
  addDevice(device, state) {
    this.place(device, state);
    this.element.dataset.devices = String(this.markers.size);
  }

  place(device, state = { state: "ok", severity: null }) {
    this.markers.get(device.id)?.remove();
    this.devices.set(device.id, device);
    const style = markerStyle(state.state, state.severity);
    const marker = L.circleMarker([device.lat, device.lon], { ...style, renderer: this.canvas });
    marker.deviceId = device.id; // its tooltip is made when hovered: binding 10,000 costs a second
    marker.deviceState = state;
    marker.addTo(this.deviceLayer);
    this.markers.set(device.id, marker);
    if (state.state === "alerting") marker.bringToFront();
  }

  /** Show one device in `state` ("ok" | "alerting" with a severity | "offline" | "maintenance"). */
  setDeviceState(deviceId, { state, severity = null }) {
    const marker = this.markers.get(deviceId);
    if (!marker) return;
    marker.setStyle(markerStyle(state, severity));
    if (state === "alerting") marker.bringToFront();
    marker.deviceState = { state, severity }; // its tooltip is made when hovered (see place)
  }

  tooltip(deviceId) {
    const { state, severity } = this.markers.get(deviceId).deviceState;
    const label = state === "alerting" ? `${t("device.alerting")}: ${severityLabel(severity)}` : t(`device.${state}`);
    return text(`${deviceId} · ${label}`);
  }

  /** Fill the areas of active incidents in their most severe colour (incidents from the API). */
  highlightIncidents(incidents) {
    this.hot.clear();
    for (const incident of incidents) {
      for (const id of [...incident.districts, ...incident.grids]) {
        const known = this.hot.get(id);
        if (!known || severityRank(incident.severity) > severityRank(known)) this.hot.set(id, incident.severity);
      }
    }
    this.areaLayer.setStyle((f) => this.areaStyle(f));
  }

  /** Ring the devices `ids` (an incident's) and zoom to them; none: clear the rings. */
  focusDevices(ids, severity = "info") {
    this.focusLayer.clearLayers();
    const points = ids.map((id) => this.devices.get(id)).filter(Boolean).map((d) => [d.lat, d.lon]);
    for (const point of points) {
      L.circleMarker(point, { radius: 14, color: severityColour(severity), weight: 3, fillOpacity: 0, interactive: false, pane: "devices" })
        .addTo(this.focusLayer);
    }
    if (points.length) this.map.fitBounds(L.latLngBounds(points).pad(0.5), { maxZoom: 14 });
  }

  /** Fit the view to the areas, or to the devices when no area is stored. */
  fit() {
    const layer = this.areaLayer.getLayers().length ? this.areaLayer : L.featureGroup([...this.markers.values()]);
    const bounds = layer.getBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds.pad(0.05));
  }

  /** After the element changed size. */
  resize() {
    this.map.invalidateSize();
  }
}
