// Times in the city's time zone (GET /api/v1/ui-config), whatever the browser's own zone.
// Call loadTimeZone() once before formatting. The pages hold every time as epoch ms: the API's
// RFC 3339 times are parsed once, as its JSON comes in (parseApiJson).

import { lang } from "./i18n.js";

let zone = "Asia/Shanghai";

/** Fetch the city's time zone (public endpoint); resolves to its IANA name. */
export async function loadTimeZone() {
  const response = await fetch("/api/v1/ui-config");
  if (response.ok) zone = (await response.json()).timezone;
  return zone;
}

export function timeZone() {
  return zone;
}

// the API's times: `at`, `*_at` and the ranges' `since` / `until` (docs/api-conventions.md)
const TIME_KEY = /^(at|since|until)$|_at$/;

/** JSON from the API (a response, a live event) with its RFC 3339 times as epoch ms. */
export function parseApiJson(text) {
  return JSON.parse(text, (key, value) => (typeof value === "string" && TIME_KEY.test(key) ? Date.parse(value) : value));
}

const formatters = new Map(); // building an Intl.DateTimeFormat costs more than using one

function formatter(locale, options) {
  const key = `${locale} ${zone} ${JSON.stringify(options)}`;
  if (!formatters.has(key)) formatters.set(key, new Intl.DateTimeFormat(locale, { timeZone: zone, hourCycle: "h23", ...options }));
  return formatters.get(key);
}

function format(ms, options) {
  return formatter(lang() === "zh" ? "zh-CN" : "en-GB", options).format(ms);
}

/** 14:05:09 */
export function formatTime(ms) {
  return format(ms, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** 2026-12-07 14:05 (with seconds when asked) */
export function formatDateTime(ms, { seconds = false } = {}) {
  const p = parts(ms);
  const hm = `${p.hour}:${p.minute}${seconds ? `:${p.second}` : ""}`;
  return `${p.year}-${p.month}-${p.day} ${hm}`;
}

/** A duration in ms as "1 h 05 min" / "42 s". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function parts(ms) {
  const found = {};
  const fmt = formatter("en-GB", { year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
  for (const { type, value } of fmt.formatToParts(ms)) found[type] = value;
  return found;
}

/** The zone's offset from UTC at instant `ms`, in ms. */
function offsetMs(ms) {
  const p = parts(ms);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The value for an <input type="datetime-local"> showing instant `ms` in the city's zone. */
export function toZonedInput(ms) {
  const p = parts(ms);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The instant (epoch ms) of a datetime-local value read as the city's wall-clock time. */
export function fromZonedInput(value) {
  const [date, time] = value.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  let ms = wall - offsetMs(wall);
  ms = wall - offsetMs(ms); // once more: the offset may differ across a DST change
  return ms;
}
