// The live event stream (WebSocket /api/v1/live) that resumes where it left off: after a
// network failure, a server restart or an expired token it reconnects with a fresh token and
// ?since=<last id seen>, so the server replays what was missed (api/live_resume.py). When the
// server no longer holds what followed that id it sends a `gap` event: reload from the API.

import { streamCredential } from "./api.js";
import { parseApiJson } from "./time.js";

const BACKOFF_MS = [500, 1000, 2000, 5000, 10000];

/**
 * connectLive({onEvent, onGap, onStatus}) -> {close(), lastId()}
 * onEvent(event): every alert / incident / dispatch event, in order, each once (`at` in epoch ms).
 * onGap(event): events were lost; reload the state from the REST API.
 * onStatus(state): "connecting" | "live" | "offline".
 * Open it before loading the state from the REST API, so nothing falls in between.
 */
export function connectLive({ onEvent, onGap = () => {}, onStatus = () => {} }) {
  let lastId = null;
  let socket = null;
  let closed = false;
  let failures = 0;
  let timer = null;

  const retry = () => {
    if (closed) return;
    onStatus("offline");
    const wait = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)];
    failures += 1;
    timer = setTimeout(open, wait);
  };

  async function open() {
    if (closed) return;
    onStatus("connecting");
    let credential;
    try {
      credential = await streamCredential();
    } catch {
      credential = null;
    }
    if (!credential) return retry();
    const url = new URL("/api/v1/live", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set(...credential);
    if (lastId !== null) url.searchParams.set("since", lastId);
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      failures = 0;
      onStatus("live");
    });
    socket.addEventListener("message", (message) => {
      const event = parseApiJson(message.data);
      if (event.type === "gap") {
        lastId = null; // what follows may even restart from 1 (the store was replaced)
        onGap(event);
        return;
      }
      if (typeof event.id === "number") {
        if (lastId !== null && event.id <= lastId) return;
        lastId = event.id;
      }
      onEvent(event);
    });
    socket.addEventListener("close", retry);
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.close();
    },
    lastId: () => lastId,
  };
}
