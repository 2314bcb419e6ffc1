// Chinese and English labels. The language is the user's choice (kept in localStorage), else
// Chinese when the browser asks for it (navigator.language zh*), else English.
// Static labels: <span data-i18n="key">, data-i18n-title / -placeholder / -aria-label for
// attributes; applyI18n() fills them and runs again on every switch.

const CHOICE = "urbanwatch.lang";
export const LANGS = ["zh", "en"];

const messages = { zh: {}, en: {} };
const listeners = [];

/** Add labels: addMessages({zh: {key: "…"}, en: {key: "…"}}); later ones win. */
export function addMessages(more) {
  for (const lang of LANGS) Object.assign(messages[lang], more[lang] || {});
}

export function lang() {
  const chosen = localStorage.getItem(CHOICE);
  if (LANGS.includes(chosen)) return chosen;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
}

/** The label of `key` in the current language, with {name} placeholders filled from params. */
export function t(key, params = {}) {
  const text = messages[lang()][key] ?? messages.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? params[name] : `{${name}}`));
}

export function setLang(choice) {
  localStorage.setItem(CHOICE, choice);
  applyI18n();
  for (const listener of listeners) listener(choice);
}

/** Call `listener(lang)` after every language switch (to re-render dynamic text). */
export function onLangChange(listener) {
  listeners.push(listener);
}

export function applyI18n(root = document) {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attr of ["title", "placeholder", "aria-label"]) {
    const data = `data-i18n-${attr}`;
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attr, t(el.getAttribute(data)));
  }
}

/** A <select> switching the language, for a page's header. */
export function languageSwitch() {
  const select = document.createElement("select");
  select.className = "lang-switch";
  select.setAttribute("aria-label", "语言 / Language");
  for (const [value, label] of [["zh", "中文"], ["en", "English"]]) {
    select.append(new Option(label, value, false, value === lang()));
  }
  select.addEventListener("change", () => setLang(select.value));
  return select;
}

addMessages({
  zh: {
    "app.name": "城市感知预警平台",
    "login.title": "登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "登录失败：{reason}",
    "action.logout": "退出",
    "action.dismiss": "关闭",
    "action.close": "关闭",
    "action.apply": "应用",
    "error.login_needed": "请先登录",
    "error.role": "角色 {role} 不能使用此页面",
    "live.connecting": "连接中…",
    "live.live": "实时",
    "live.offline": "已断开，正在重连",
    "severity.info": "信息",
    "severity.blue": "蓝色（IV级）",
    "severity.yellow": "黄色（III级）",
    "severity.orange": "橙色（II级）",
    "severity.red": "红色（I级）",
    "device.ok": "正常",
    "device.alerting": "告警",
    "device.offline": "离线",
    "device.maintenance": "维护中",
    "device.retired": "已退役",
    "state.new": "新建",
    "state.dispatched": "已派发",
    "state.acknowledged": "已确认",
    "state.en_route": "在途",
    "state.on_scene": "到场",
    "state.resolved": "已处置",
    "state.closed": "已关闭",
    "state.reassigned": "已转派",
    "state.cancelled": "已取消（误报）",
    "category.environment": "环境",
    "category.traffic": "交通",
    "category.safety": "安全",
    "category.flood": "防汛",
    "category.fire": "消防",
    "category.infrastructure": "基础设施",
    "category.device": "设备",
    "map.label": "城市地图",
  },
  en: {
    "app.name": "urbanwatch",
    "login.title": "Log in",
    "login.username": "User name",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Login failed: {reason}",
    "action.logout": "Log out",
    "action.dismiss": "Dismiss",
    "action.close": "Close",
    "action.apply": "Apply",
    "error.login_needed": "Please log in",
    "error.role": "The role {role} cannot use this page",
    "live.connecting": "connecting…",
    "live.live": "live",
    "live.offline": "disconnected, reconnecting",
    "severity.info": "info",
    "severity.blue": "blue (IV)",
    "severity.yellow": "yellow (III)",
    "severity.orange": "orange (II)",
    "severity.red": "red (I)",
    "device.ok": "ok",
    "device.alerting": "alerting",
    "device.offline": "offline",
    "device.maintenance": "maintenance",
    "device.retired": "retired",
    "state.new": "new",
    "state.dispatched": "dispatched",
    "state.acknowledged": "acknowledged",
    "state.en_route": "en route",
    "state.on_scene": "on scene",
    "state.resolved": "resolved",
    "state.closed": "closed",
    "state.reassigned": "reassigned",
    "state.cancelled": "cancelled (false alarm)",
    "category.environment": "environment",
    "category.traffic": "traffic",
    "category.safety": "safety",
    "category.flood": "flood",
    "category.fire": "fire",
    "category.infrastructure": "infrastructure",
    "category.device": "device",
    "map.label": "City map",
  },
});
