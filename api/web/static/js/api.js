// The public API from a page: login with the token endpoints, a fetch wrapper that sends the
// access token and refreshes it once when it is refused, and one place to show errors.
// Tokens live in sessionStorage: one login per browser tab (a refresh token is single use,
// so two tabs must not share one).

import { t } from "./i18n.js";
import { parseApiJson } from "./time.js";

const KEY = "urbanwatch.auth";
const EARLY_S = 30; // refresh an access token this long before it expires

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function stored() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function store(tokens) {
  const expiresAtMs = Date.now() + tokens.expires_in * 1000;
  const auth = { access: tokens.access_token, refresh: tokens.refresh_token, expiresAtMs };
  sessionStorage.setItem(KEY, JSON.stringify(auth));
  return auth;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

/** Log in with a user name and password; resolves to the caller (`/auth/me`). */
export async function login(username, password) {
  const response = await fetch("/api/v1/auth/token", {
    method: "POST",
    body: new URLSearchParams({ username, password }),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  store(await response.json());
  me.cached = null;
  return me();
}

/** Forget the tokens of this tab and go to the login page. */
export function logout() {
  sessionStorage.removeItem(KEY);
  me.cached = null;
  location.assign("/login");
}

let apiKey = null; // a page holding an API key (the wall screen) sends it instead of tokens

/** Call the API with an API key (X-API-Key, `?key=` on the live stream) instead of a login. */
export function useApiKey(key) {
  apiKey = key;
  me.cached = null;
}

/** How the live stream authenticates: ["key", apiKey] or ["token", access token]; null when
 * logged out. */
export async function streamCredential() {
  if (apiKey) return ["key", apiKey];
  const token = await accessToken();
  return token ? ["token", token] : null;
}

let refreshing = null; // one refresh at a time: the refresh token is single use

async function refreshed() {
  const auth = stored();
  if (!auth) return null;
  const response = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: auth.refresh }),
  });
  if (!response.ok) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return store(await response.json());
}

function refresh() {
  refreshing ??= refreshed().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A valid access token (refreshed when about to expire), or null when logged out. */
export async function accessToken() {
  let auth = stored();
  if (auth && auth.expiresAtMs - EARLY_S * 1000 < Date.now()) auth = await refresh();
  return auth?.access ?? null;
}

function toLogin() {
  const next = location.pathname + location.search + location.hash;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/**
 * Call the API: `api("/incidents", {query: {state: "new"}})`, `api(path, {method: "POST",
 * json: body})`, or a raw `body` (a Blob) sent as its own type. Paths are under /api/v1.
 * Resolves to the parsed JSON with its times as epoch ms (text for non-JSON, a Blob with
 * `blob: true`, null for 204); rejects with ApiError (a 401 that a refresh cannot cure goes to
 * the login page).
 */
export async function api(path, { method = "GET", json, query, accept, body, blob = false } = {}) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    for (const v of [value].flat()) if (v !== undefined && v !== null && v !== "") url.searchParams.append(name, v);
  }
  const send = async (token) => {
    const headers = apiKey ? { "X-API-Key": apiKey } : { Authorization: `Bearer ${token}` };
    if (accept) headers.Accept = accept;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    else if (body?.type) headers["Content-Type"] = body.type;
    return fetch(url, { method, headers, body: json === undefined ? body : JSON.stringify(json) });
  };
  let token = apiKey ?? (await accessToken());
  if (!token) {
    toLogin();
    throw new ApiError(401, { detail: t("error.login_needed") });
  }
  let response = await send(token);
  if (response.status === 401 && !apiKey) {
    token = (await refresh())?.access;
    if (!token) {
      toLogin();
      throw new ApiError(401, await problemOf(response));
    }
    response = await send(token);
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (response.status === 204) return null;
  if (blob) return response.blob();
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? parseApiJson(await response.text()) : response.text();
}

/** Every item of a paged list (`items`, `total`): the first page, then the others at once. */
export async function apiAll(path, query = {}, limit = 1000) {
  const first = await api(path, { query: { ...query, limit, offset: 0 } });
  const offsets = [];
  for (let offset = limit; offset < first.total; offset += limit) offsets.push(offset);
  const rest = await Promise.all(offsets.map((offset) => api(path, { query: { ...query, limit, offset } })));
  return [first, ...rest].flatMap((page) => page.items);
}

/** The caller (`{subject, role, teams, kind}`), fetched once per page. */
export async function me() {
  me.cached ??= api("/auth/me");
  return me.cached;
}

/** On a page that needs a login: the caller, or off to the login page (then never resolves). */
export async function requireLogin(roles = null) {
  if (!stored()) {
    toLogin();
    return new Promise(() => {});
  }
  const caller = await me();
  if (roles && !roles.includes(caller.role)) {
    showError(new ApiError(403, { detail: t("error.role", { role: caller.role }) }));
  }
  return caller;
}

/** Show an error to the user in the page's `#errors` region (an alert for screen readers). */
export function showError(error) {
  console.error(error);
  let region = document.getElementById("errors");
  if (!region) {
    region = document.createElement("div");
    region.id = "errors";
    document.body.prepend(region);
  }
  region.setAttribute("role", "alert");
  const item = document.createElement("p");
  item.className = "error";
  const what = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error.message || error);
  item.textContent = what;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "×";
  close.setAttribute("aria-label", t("action.dismiss"));
  close.addEventListener("click", () => item.remove());
  item.append(" ", close);
  region.append(item);
  while (region.children.length > 3) region.firstElementChild.remove();
}
