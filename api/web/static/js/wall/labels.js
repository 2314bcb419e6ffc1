// The wall screen's own labels (the shared ones are in ../i18n.js).

import { addMessages } from "../i18n.js";

addMessages({
  zh: {
    "wall.title": "城市态势大屏",
    "wall.active": "活动事件",
    "wall.total": "合计",
    "wall.by_district": "各区事件",
    "wall.no_incident": "无",
    "wall.health": "设备与接入",
    "wall.devices": "设备总数",
    "wall.online": "在线",
    "wall.offline": "离线",
    "wall.maintenance": "维护中",
    "wall.rate": "接入速率（条/秒）",
    "wall.newest": "最新预警",
    "wall.quiet": "当前没有活动事件",
    "wall.key_refused": "大屏密钥被拒绝（已撤销？）：请管理员重新打开 /wall#key=…",
  },
  en: {
    "wall.title": "City situation",
    "wall.active": "Active incidents",
    "wall.total": "Total",
    "wall.by_district": "By district",
    "wall.no_incident": "none",
    "wall.health": "Sensors and ingest",
    "wall.devices": "Devices",
    "wall.online": "Online",
    "wall.offline": "Offline",
    "wall.maintenance": "In maintenance",
    "wall.rate": "Ingest (readings/s)",
    "wall.newest": "Newest warnings",
    "wall.quiet": "No active incident",
    "wall.key_refused": "The wall key was refused (revoked?): an admin must open /wall#key=… again",
  },
});
