// The ingest rate from the platform's public Prometheus counters (GET /metrics, no login):
// readings stored per second between two scrapes.

const STORED = /^urbanwatch_ingest_stored_readings_total(?:\{[^}]*\})? ([0-9.eE+-]+)$/m;

/** The stored-readings counter in a /metrics text; null when it is not there. */
export function storedReadings(text) {
  const found = STORED.exec(text);
  return found ? Number(found[1]) : null;
}

/** Scrape /metrics every `everyMs`; onRate(readings per second | null) after each scrape. */
export function watchIngestRate(onRate, everyMs = 5000) {
  let last = null; // {value, atMs}
  async function scrape() {
    try {
      const response = await fetch("/metrics", { cache: "no-store" });
      const value = response.ok ? storedReadings(await response.text()) : null;
      const atMs = performance.now();
      if (value === null) {
        last = null;
        onRate(null);
      } else {
        // a counter that went down belongs to a restarted server: start again from it
        if (last && value >= last.value && atMs > last.atMs) onRate((value - last.value) / ((atMs - last.atMs) / 1000));
        last = { value, atMs };
      }
    } catch {
      last = null; // the server is away; the wall says so elsewhere
      onRate(null);
    }
  }
  scrape();
  return setInterval(scrape, everyMs);
}
