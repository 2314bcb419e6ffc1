// The field page (/field): a responder's phone in the street. After login it lists the open
// incidents of the responder's teams (the API sees to that: another team's incident does not
// exist for them), most severe first, then nearest (when the browser may share its location),
// then newest. An incident opens (#/incident/ID) with its facts and timeline and the steps of
// the work: acknowledge, en route, on scene, resolved, each with an optional note and photo.
// New incidents for the team arrive over the live stream with a beep and a vibration.

import "./field/labels.js";
import { ApiError, api, apiAll, logout, requireLogin, showError } from "./api.js";
import { h, fill } from "./dom.js";
import { applyI18n, languageSwitch, onLangChange, t } from "./i18n.js";
import { connectLive } from "./live.js";
import { severityBadge } from "./severity.js";
import { formatDateTime, formatTime, loadTimeZone } from "./time.js";
import { alarm, enableSound, soundOn } from "./field/alarm.js";
import { showPhoto, sendPhoto } from "./field/photo.js";
import { byUrgency, distanceM, locate } from "./field/place.js";

const $ = (id) => document.getElementById(id);
const OPEN_STATES = ["new", "dispatched", "acknowledged", "en_route", "on_scene"];
// what may come next, as the incident state machine allows it (alerts/decisions/incidents.py)
const NEXT = {
  new: [],
  dispatched: ["acknowledge"],
  acknowledged: ["en_route", "on_scene", "resolved"],
  en_route: ["on_scene", "resolved"],
  on_scene: ["resolved"],
};
const ACTORS = new Set(["responder", "operator", "admin"]);

const incidents = new Map(); // open incidents of the caller's teams: id -> incident
const places = new Map(); // id -> {lat, lon} | null
const fresh = new Set(); // arrived since the page was opened, not yet looked at
let caller = null;
let here = null; // {lat, lon} when the browser shares it
let shown = null; // the incident open in the detail view (IncidentDetail)

const isOpen = (incident) => OPEN_STATES.includes(incident.state);

function distances() {
  const found = new Map();
  if (!here) return found;
  for (const [id, place] of places) if (place) found.set(id, distanceM(here, place));
  return found;
}

function distanceText(metres) {
  if (metres === undefined) return null;
  return metres < 1000 ? t("field.m", { m: Math.round(metres / 10) * 10 }) : t("field.km", { km: (metres / 1000).toFixed(1) });
}

function card(incident, metres) {
  return h("li", { class: `card sev-edge-${incident.severity}`,
    dataset: { incident: incident.id, state: incident.state, severity: incident.severity,
               devices: incident.devices.join(" "), fresh: String(fresh.has(incident.id)) } },
  h("a", { href: `#/incident/${encodeURIComponent(incident.id)}` },
    h("span", { class: "card-head" }, severityBadge(incident.severity),
      h("span", { class: "state-tag" }, t(`state.${incident.state}`))),
    h("span", { class: "title" }, incident.title),
    h("span", { class: "meta" },
      distanceText(metres) && h("span", { class: "distance" }, distanceText(metres)),
      h("span", {}, incident.districts.join(" · ")),
      h("span", {}, t("field.opened", { time: formatTime(incident.opened_at) })))));
}

function renderList() {
  const list = $("incidents");
  const far = distances();
  const ordered = byUrgency([...incidents.values()], far);
  fill(list, ordered.length ? ordered.map((i) => card(i, far.get(i.id)))
    : h("li", { class: "empty" }, t("field.empty")));
  $("where").textContent = here ? t("field.near") : t("field.no_location");
}

async function place(incident) {
  if (!places.has(incident.id)) places.set(incident.id, await locate(incident));
}

/** Keep `incident` (or drop it once it is no longer open) and redraw. */
async function put(incident) {
  if (isOpen(incident)) {
    incidents.set(incident.id, incident);
    await place(incident);
  } else {
    incidents.delete(incident.id);
  }
  renderList();
  if (shown?.id === incident.id && incident.timeline) showDetail(incident);
}

async function loadIncidents() {
  const found = await apiAll("/incidents", { state: OPEN_STATES });
  incidents.clear();
  await Promise.all(found.map((i) => place(i).then(() => incidents.set(i.id, i))));
  renderList();
  $("incidents").dataset.loaded = "true";
}

const fetching = new Map(); // id -> "again" when it changed while being fetched

/** Fetch the incident again (once at a time); a 404 means it is not the team's any more. */
function refresh(id, { announce = false } = {}) {
  if (fetching.has(id)) {
    fetching.set(id, "again");
    return;
  }
  fetching.set(id, "once");
  api(`/incidents/${encodeURIComponent(id)}`)
    .then(async (incident) => {
      const isNew = !incidents.has(id) && isOpen(incident);
      await put(incident);
      if (isNew && announce) {
        fresh.add(id);
        renderList();
        alarm();
        $("announce").textContent = t("field.new_incident", { title: incident.title });
      }
    })
    .catch((error) => {
      if (!(error instanceof ApiError && error.status === 404)) return;
      incidents.delete(id);
      renderList();
      if (shown?.id === id) showError(new Error(t("field.not_yours")));
    })
    .finally(() => {
      const again = fetching.get(id) === "again";
      fetching.delete(id);
      if (again) refresh(id);
    });
}

// ---- the detail view ----------------------------------------------------------------------

function kindLabel(kind) {
  for (const key of [`state.${kind}`, `kind.${kind}`]) if (t(key) !== key) return t(key);
  return kind;
}

function timeline(incident) {
  return h("ol", { class: "timeline", id: "incident-timeline" }, [...incident.timeline].reverse().map((entry) => {
    const photo = entry.kind === "photo" ? h("img", { alt: t("kind.photo"), dataset: { photo: entry.detail } }) : null;
    if (photo) showPhoto(photo, incident.id, entry.detail).catch(showError);
    return h("li", { dataset: { kind: entry.kind } },
      h("time", {}, formatDateTime(entry.at, { seconds: true })),
      h("strong", {}, kindLabel(entry.kind)), " · ", h("span", { class: "actor" }, entry.actor),
      entry.detail && !photo ? ` · ${entry.detail}` : "", photo);
  }));
}

function progressForm(incident) {
  const steps = NEXT[incident.state] ?? [];
  const form = h("form", { class: "progress", id: "progress", dataset: { incident: incident.id } },
    h("h3", {}, t("field.progress")),
    h("label", {}, t("field.note"), h("textarea", { name: "note", maxlength: "2000" })),
    h("label", {}, t("field.photo"), h("input", { type: "file", name: "photo", id: "photo", accept: "image/jpeg,image/png,image/webp", capture: "environment" })),
    h("div", { class: "buttons" },
      steps.map((step, n) => h("button", { type: "button", id: `action-${step}`, class: n === 0 ? "primary" : null,
        onclick: () => act(incident.id, step, form) }, t(`action.${step}`))),
      h("button", { type: "button", id: "action-note", onclick: () => act(incident.id, "note", form) }, t("action.note"))));
  return form;
}

async function act(id, step, form) {
  const note = form.note.value.trim();
  const file = form.photo.files[0];
  const buttons = [...form.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  const path = `/incidents/${encodeURIComponent(id)}`;
  try {
    let incident = file ? await sendPhoto(id, file) : null;
    if (step === "acknowledge") {
      incident = await api(`${path}/acknowledge`, { method: "POST" });
      if (note) incident = await api(`${path}/notes`, { method: "POST", json: { text: note } });
    } else if (step === "note") {
      if (note) incident = await api(`${path}/notes`, { method: "POST", json: { text: note } });
    } else {
      incident = await api(`${path}/transition`, { method: "POST", json: { to: step, detail: note } });
    }
    form.reset(); // done: what was typed and picked has been sent
    if (incident) {
      await put(incident);
      showDetail(incident);
      if (!isOpen(incident)) $("announce").textContent = t("field.done");
    }
  } catch (error) {
    showError(error);
    for (const button of buttons) button.disabled = false;
  }
}

/** What the responder typed and picked stays when the incident is shown again (a live update
 * while they write must not wipe it). */
function carryOver(form, incidentId) {
  const old = $("progress");
  if (!form || !old || old.dataset.incident !== incidentId) return;
  form.note.value = old.note.value;
  form.photo.replaceWith(old.photo);
}

function showDetail(incident) {
  shown = incident;
  fresh.delete(incident.id);
  const view = $("detail-view");
  const form = caller && ACTORS.has(caller.role) ? progressForm(incident) : null;
  carryOver(form, incident.id);
  const fact = (label, value) => [h("dt", {}, t(label)), h("dd", {}, value)];
  const metres = distances().get(incident.id);
  fill(view,
    h("a", { class: "back", href: "#/" }, t("field.back")),
    h("h2", {}, severityBadge(incident.severity), " ", incident.title),
    h("dl", { class: "facts" },
      fact("field.state", h("span", { id: "incident-state", dataset: { state: incident.state } }, t(`state.${incident.state}`))),
      fact("field.category", t(`category.${incident.category}`)),
      fact("field.team", incident.team_id ?? "–"),
      fact("field.districts", [incident.districts.join(" · "), distanceText(metres) ? ` (${distanceText(metres)})` : ""]),
      fact("field.devices", incident.devices.join(", ")),
      fact("field.opened_at", formatDateTime(incident.opened_at))),
    form,
    h("h3", {}, t("field.timeline")),
    timeline(incident));
}

async function route() {
  const [, id] = location.hash.match(/^#\/incident\/(.+)$/) ?? [];
  $("list-view").hidden = Boolean(id);
  $("detail-view").hidden = !id;
  if (!id) {
    shown = null;
    renderList();
    return;
  }
  try {
    const incident = await api(`/incidents/${id}`);
    showDetail(incident);
    $("detail-view").querySelector("h2")?.focus?.();
  } catch (error) {
    showError(error);
    location.hash = "#/";
  }
}

// ---- live updates, location, sound ------------------------------------------------------------

let lost = false;

function setLiveStatus(state) {
  const element = $("live-status");
  element.dataset.state = state;
  element.textContent = t(`live.${state}`);
  if (state === "offline") lost = true;
  if (state === "live" && lost) { // back after a break: what changed meanwhile is loaded anew
    lost = false;
    loadIncidents().catch(showError);
  }
}

function startLive() {
  return connectLive({
    onEvent(event) {
      if (event.type === "incident") refresh(event.incident_id, { announce: true });
    },
    onGap: () => loadIncidents().catch(showError),
    onStatus: setLiveStatus,
  });
}

/** Follow the phone's location while the user lets the page have it (asked again when they
 * change their mind in the browser's settings). */
function watchLocation() {
  if (!navigator.geolocation) return;
  const start = () => navigator.geolocation.watchPosition((position) => {
    here = { lat: position.coords.latitude, lon: position.coords.longitude };
    renderList();
  }, () => {
    here = null;
    renderList();
  }, { maximumAge: 60_000, timeout: 30_000 });
  let watch = start();
  navigator.permissions?.query({ name: "geolocation" }).then((permission) => {
    permission.addEventListener("change", () => {
      navigator.geolocation.clearWatch(watch);
      watch = start();
    });
  }).catch(() => {});
}

function wireSound() {
  const button = $("sound");
  const show = () => {
    button.setAttribute("aria-pressed", String(soundOn()));
    button.textContent = t(soundOn() ? "field.sound_is_on" : "field.sound_on");
  };
  button.addEventListener("click", () => {
    enableSound();
    show();
  });
  // the first touch or key anywhere allows sound: the page may then beep on its own
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => {
      enableSound();
      show();
    }, { once: true });
  }
  return show;
}

async function main() {
  applyI18n();
  $("lang").append(languageSwitch());
  $("logout").addEventListener("click", logout);
  const showSound = wireSound();
  caller = await requireLogin([...ACTORS]);
  const who = () => {
    const teams = caller.teams.length ? caller.teams.join(", ") : t("field.all_teams");
    $("who").textContent = `${caller.subject} · ${t("field.teams", { teams })}`;
  };
  who();
  await loadTimeZone();
  startLive(); // first: nothing falls between the load and the stream
  await loadIncidents();
  watchLocation();
  window.addEventListener("hashchange", () => route().catch(showError));
  onLangChange(() => {
    showSound();
    setLiveStatus($("live-status").dataset.state);
    who();
    route().catch(showError);
  });
  await route();
}

main().catch(showError);
