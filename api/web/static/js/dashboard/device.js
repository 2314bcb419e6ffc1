// The device panel: a device's latest readings with a sparkline of the last hours each
// (GET /devices/{id}/latest and /readings), and putting it in or out of maintenance.

import { api, showError } from "../api.js";
import { sparkline } from "../chart.js";
import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { formatDateTime } from "../time.js";
import { putDevice, store } from "./store.js";

const HOURS = 6;
const HOUR_MS = 3_600_000;

function canWrite() {
  return ["admin", "operator"].includes(store.caller.role);
}

/** Open the panel for `deviceId` in `element` (a dialog-like region over the map). */
export async function showDevice(element, deviceId) {
  const device = store.devices.get(deviceId) ?? (await api(`/devices/${encodeURIComponent(deviceId)}`));
  const close = h("button", { type: "button", class: "close", "aria-label": t("action.close"),
    onclick: () => hideDevice(element) }, "×");
  const body = h("div", { class: "device-body" }, "…");
  fill(element,
    h("header", {}, h("h2", { id: "device-title" }, t("device.title", { id: device.id })), close),
    h("p", { class: "device-meta" }, `${device.type} · ${device.district}${device.grid ? ` / ${device.grid}` : ""} · `,
      h("span", { class: "device-status" }, t(`device.${device.status === "active" ? "ok" : device.status}`))),
    maintenanceButton(element, device),
    body);
  element.hidden = false;
  element.setAttribute("aria-labelledby", "device-title");
  close.focus();
  const latest = await api(`/devices/${encodeURIComponent(device.id)}/latest`);
  if (!latest.readings.length) {
    fill(body, h("p", {}, t("device.none")));
    return;
  }
  const list = h("ul", { class: "readings" });
  fill(body, h("h3", {}, t("device.latest"), " ", h("small", {}, t("device.hours", { hours: HOURS }))), list);
  const start = new Date(Date.now() - HOURS * HOUR_MS).toISOString();
  for (const reading of latest.readings) {
    const chart = h("div", { class: "spark" });
    list.append(h("li", { dataset: { metric: reading.metric } },
      h("span", { class: "metric" }, reading.metric), " ",
      h("strong", { class: "value" }, `${reading.value} ${reading.unit}`), " ",
      h("time", {}, formatDateTime(reading.at, { seconds: true })), chart));
    api(`/devices/${encodeURIComponent(device.id)}/readings`, { query: { metric: reading.metric, since: start, every: "5m", aggregate: "mean" } })
      .then((series) => sparkline(chart, series.points))
      .catch(showError);
  }
}

function maintenanceButton(element, device) {
  if (!canWrite() || !["active", "maintenance"].includes(device.status)) return null;
  const to = device.status === "active" ? "maintenance" : "active";
  const label = to === "maintenance" ? t("device.to_maintenance") : t("device.back_in_service");
  return h("button", { type: "button", class: "maintenance-toggle", onclick: async () => {
    try {
      const updated = await api(`/devices/${encodeURIComponent(device.id)}`, { method: "PATCH", json: { status: to } });
      putDevice(updated);
      await showDevice(element, updated.id);
    } catch (error) {
      showError(error);
    }
  } }, label);
}

export function hideDevice(element) {
  element.hidden = true;
  element.replaceChildren();
}
