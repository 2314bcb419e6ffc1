// Maintenance and silences: devices in maintenance (ended here: back in service) and silences
// in force (created and ended here), through /devices and /silences.

import { api, apiAll, showError } from "../api.js";
import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { formatDateTime, fromZonedInput, toZonedInput } from "../time.js";
import { putDevice, store } from "./store.js";

const FIELDS = ["device", "grid", "district", "rule", "category"];
const HOUR_MS = 3_600_000;

function canWrite() {
  return ["admin", "operator"].includes(store.caller.role);
}

function button(label, onclick, attrs = {}) {
  return h("button", { type: "button", ...attrs, onclick: async () => {
    try {
      await onclick();
    } catch (error) {
      showError(error);
    }
  } }, label);
}

async function setStatus(deviceId, status) {
  putDevice(await api(`/devices/${encodeURIComponent(deviceId)}`, { method: "PATCH", json: { status } }));
}

function toMaintenance(rerender) {
  const form = h("form", { id: "to-maintenance", class: "grid-form" },
    h("label", {}, t("maint.device"), " ", h("input", { name: "device", required: true, list: "device-ids" })),
    h("button", { type: "submit" }, t("device.to_maintenance")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await setStatus(new FormData(form).get("device"), "maintenance");
      rerender();
    } catch (error) {
      showError(error);
    }
  });
  return form;
}

async function devicesInMaintenance(element, rerender) {
  const devices = await apiAll("/devices", { status: "maintenance" });
  fill(element, h("h2", {}, t("maint.devices")), canWrite() ? toMaintenance(rerender) : null, devices.length
    ? h("ul", { id: "maintenance-devices" }, devices.map((d) => h("li", { dataset: { device: d.id } },
      `${d.id} · ${d.type} · ${d.district} `,
      canWrite() ? button(t("device.back_in_service"), async () => {
        await setStatus(d.id, "active");
        rerender();
      }) : null)))
    : h("p", {}, t("maint.none_devices")));
}

function describe(silence) {
  return silence.matchers.map((m) => `${t(`field.${m.field}`)} = ${m.value}`).join(" ∧ ");
}

async function silences(element, rerender) {
  const found = await api("/silences");
  fill(element, h("h2", {}, t("maint.silences")), found.length
    ? h("table", { id: "silences" }, h("thead", {}, h("tr", {},
      [t("maint.field"), t("maint.starts"), t("maint.ends"), t("maint.reason"), t("maint.author"), ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, found.map((s) => h("tr", { dataset: { silence: s.id } },
      h("td", {}, describe(s)), h("td", {}, formatDateTime(s.starts_at)), h("td", {}, s.ends_at ? formatDateTime(s.ends_at) : "∞"),
      h("td", {}, s.reason), h("td", {}, s.author),
      h("td", {}, canWrite() ? button(t("maint.expire"), async () => {
        await api(`/silences/${encodeURIComponent(s.id)}/expire`, { method: "POST" });
        rerender();
      }) : null)))))
    : h("p", {}, t("maint.none_silences")));
}

function newSilence(rerender) {
  const now = Date.now();
  const form = h("form", { id: "new-silence", class: "grid-form" },
    h("label", {}, t("maint.field"), h("select", { name: "field" }, FIELDS.map((f) => new Option(t(`field.${f}`), f)))),
    h("label", {}, t("maint.value"), h("input", { name: "value", required: true, maxlength: 128, list: "device-ids" })),
    h("label", {}, t("maint.starts"), h("input", { name: "starts", type: "datetime-local", required: true, value: toZonedInput(now) })),
    h("label", {}, t("maint.ends"), h("input", { name: "ends", type: "datetime-local", required: true, value: toZonedInput(now + 2 * HOUR_MS) })),
    h("label", {}, t("maint.reason"), h("input", { name: "reason", required: true, maxlength: 2000 })),
    h("button", { type: "submit" }, t("maint.create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("/silences", { method: "POST", json: {
        matchers: [{ field: data.get("field"), value: data.get("value") }],
        starts_at: new Date(fromZonedInput(data.get("starts"))).toISOString(),
        ends_at: new Date(fromZonedInput(data.get("ends"))).toISOString(),
        reason: data.get("reason") } });
      form.reset();
      rerender();
    } catch (error) {
      showError(error);
    }
  });
  return h("section", {}, h("h2", {}, t("maint.new_silence")), form);
}

/** Render the maintenance view into `element`. */
export async function showMaintenance(element) {
  const devicesPart = h("section", {});
  const silencesPart = h("section", {});
  const rerender = () => showMaintenance(element).catch(showError);
  fill(element, canWrite() ? newSilence(rerender) : null, silencesPart, devicesPart);
  await Promise.all([silences(silencesPart, rerender), devicesInMaintenance(devicesPart, rerender)]);
}
