// Photos from the scene: made smaller on the phone before they are sent (a camera's 4-8 MB
// becomes a few hundred kB of JPEG), sent as the body of POST /incidents/{id}/photos, and
// shown on the timeline from GET /incidents/{id}/photos/{name} (with the login).

import { api } from "../api.js";

const MAX_SIDE_PX = 1600;
const shown = new Map(); // photo path -> object URL

/** `file` as a JPEG at most MAX_SIDE_PX on its longer side; the file itself if it cannot be
 * decoded here (the server says whether it takes it). */
export async function shrink(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return file;
  }
  const scale = Math.min(1, MAX_SIDE_PX / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob ?? file), "image/jpeg", 0.85));
}

export async function sendPhoto(incidentId, file) {
  return api(`/incidents/${encodeURIComponent(incidentId)}/photos`, { method: "POST", body: await shrink(file) });
}

/** Load photo `name` of the incident into `img` (once per photo). */
export async function showPhoto(img, incidentId, name) {
  const path = `/incidents/${encodeURIComponent(incidentId)}/photos/${encodeURIComponent(name)}`;
  if (!shown.has(path)) shown.set(path, api(path, { blob: true }).then((blob) => URL.createObjectURL(blob)));
  img.src = await shown.get(path);
}
