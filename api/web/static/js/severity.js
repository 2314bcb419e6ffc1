// The four warning colours (blue IV, yellow III, orange II, red I, plus info), always shown
// with a shape and a text label too, so no one needs to tell the colours apart.

import { h } from "./dom.js";
import { t } from "./i18n.js";

export const SEVERITIES = ["red", "orange", "yellow", "blue", "info"]; // most severe first
export const WARNING_LEVELS = ["red", "orange", "yellow", "blue"];

const COLOURS = { red: "#d7191c", orange: "#f07c00", yellow: "#f5c800", blue: "#1f64c8", info: "#7a7a7a" };
const SHAPES = { red: "■", orange: "◆", yellow: "▲", blue: "▼", info: "○" };

/** Rank for sorting: red 4 … blue 1, info 0. */
export function severityRank(severity) {
  return 4 - SEVERITIES.indexOf(severity);
}

export function severityColour(severity) {
  return COLOURS[severity] ?? COLOURS.info;
}

export function severityShape(severity) {
  return SHAPES[severity] ?? SHAPES.info;
}

/** The translated label, e.g. "红色（I级）" / "red (I)". */
export function severityLabel(severity) {
  return t(`severity.${severity}`);
}

/** A badge: coloured, with its shape and label (class "sev sev-<name>"). */
export function severityBadge(severity) {
  return h("span", { class: `sev sev-${severity}`, dataset: { severity } },
    h("span", { class: "sev-shape", "aria-hidden": "true" }, severityShape(severity)),
    " ", severityLabel(severity));
}
