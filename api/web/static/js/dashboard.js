// The operations dashboard (/): the city map.

import { logout, requireLogin, showError } from "./api.js";
import { applyI18n, languageSwitch } from "./i18n.js";
import { CityMap, loadAreas, loadDeviceStates } from "./map.js";
import { loadTimeZone } from "./time.js";

async function main() {
  applyI18n();
  document.getElementById("lang").append(languageSwitch());
  document.getElementById("logout").addEventListener("click", logout);
  const caller = await requireLogin(["admin", "operator", "viewer"]);
  document.getElementById("who").textContent = `${caller.subject} (${caller.role})`;
  await loadTimeZone();
  const map = new CityMap(document.getElementById("map"));
  map.setAreas(await loadAreas());
  const { devices, states } = await loadDeviceStates();
  map.setDevices(devices, states);
}

main().catch(showError);
