// The login page: tokens from POST /auth/token, then on to the page asked for (?next=), or
// the page of the caller's role (responders: the field page).

import { login } from "./api.js";
import { applyI18n, languageSwitch, t } from "./i18n.js";

const HOME_BY_ROLE = { responder: "/field" };

function destination(role) {
  const next = new URLSearchParams(location.search).get("next");
  // only a path of this site: never an address elsewhere
  if (next && next.startsWith("/") && !next.startsWith("//")) return next;
  return HOME_BY_ROLE[role] ?? "/";
}

document.getElementById("lang").append(languageSwitch());
applyI18n();
const form = document.getElementById("login-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const failed = document.getElementById("failed");
  failed.textContent = "";
  try {
    const caller = await login(form.username.value, form.password.value);
    location.assign(destination(caller.role));
  } catch (error) {
    failed.textContent = t("login.failed", { reason: error.message });
  }
});
