// Where an incident is (the middle of its devices) and how far from the responder; the
// order of the list: most severe first, then nearest, then newest.

import { api } from "../api.js";
import { severityRank } from "../severity.js";

const devices = new Map(); // id -> device (or a pending fetch)

async function device(id) {
  if (!devices.has(id)) devices.set(id, api(`/devices/${encodeURIComponent(id)}`).catch(() => null));
  return devices.get(id);
}

/** The incident's location {lat, lon} (the mean of its located devices), or null. */
export async function locate(incident) {
  const found = (await Promise.all(incident.devices.map(device))).filter(Boolean);
  if (!found.length) return null;
  const mean = (key) => found.reduce((sum, d) => sum + d[key], 0) / found.length;
  return { lat: mean("lat"), lon: mean("lon") };
}

/** Great-circle distance in metres. */
export function distanceM(a, b) {
  const rad = (deg) => (deg * Math.PI) / 180;
  const dLat = rad(b.lat - a.lat);
  const dLon = rad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
}

/** Most severe first, then nearest (unknown distances last), then newest. */
export function byUrgency(incidents, distances) {
  const far = (i) => distances.get(i.id) ?? Infinity;
  return [...incidents].sort((a, b) => severityRank(b.severity) - severityRank(a.severity)
    || far(a) - far(b) || b.opened_at - a.opened_at);
}
