"""Rule endpoints over a real rule file (seeded from the shipped pack), SQLite and InfluxDB:
reads for every role, writes for admins and operators, positions of invalid expressions, the
atomic replacement of the file, deletes (and the alerts they close), and backtests over stored
readings."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.app import create_app
from api.context import AlertsPart, RulesPart
from api.security.principal import Role
from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Registry
from ingest.config import MqttConfig
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.lineprotocol import LineEncoder
from rules.detection import Detection, Severity
from rules.language.loader import load_default_pack, load_rules_file
from rules.language.rulefile import seed_rule_file
from tests.api.conftest import DEVICES, GAS_TEAM, T0_MS, World
from tests.support.auth import bearer
from urbanwatch.alerting import Alerting
from urbanwatch.judging import Judge

ADMIN = bearer(Role.admin)
OPERATOR = bearer(Role.operator)
VIEWER = bearer(Role.viewer)
RESPONDER = bearer(Role.responder, GAS_TEAM)
MIN = 60_000
GAS_RULE = {
    "id": "gas-test", "name": "Gas test", "category": "safety",
    "match": {"device_type": ["gas"], "metric": ["lel_pct"]},
    "when": "value >= 20", "for": "2m", "severity": "red if value >= 50 else orange",
    "enabled": False,
}


@dataclasses.dataclass
class Rules:
    http: httpx.AsyncClient
    path: Path


@pytest.fixture
async def rules(world: World, tmp_path: Path) -> AsyncIterator[Rules]:
    path = tmp_path / "state" / "rules.yaml"
    seed_rule_file(path)
    registry = Registry.build(load_catalogue(), DEVICES)
    context = dataclasses.replace(world.context, rules=RulesPart(path, lambda: registry))
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Rules(http, path)


def in_file(path: Path) -> dict[str, bool]:
    return {r.id: r.enabled for r in load_rules_file(path)}


async def test_the_seeded_file_is_the_shipped_pack_and_every_role_reads_it(rules: Rules) -> None:
    assert "HJ 633-2012" in rules.path.read_text()  # the pack's comments and sources came along
    shipped = [r.id for r in load_default_pack()]
    for who in (ADMIN, OPERATOR, VIEWER, RESPONDER):
        listed = await rules.http.get("/api/v1/rules", headers=who)
        assert listed.status_code == 200
        assert [r["id"] for r in listed.json()["items"]] == shipped
    fires = (await rules.http.get("/api/v1/rules", headers=VIEWER,
                                  params={"category": "fire"})).json()
    assert fires["total"] >= 1 and {r["category"] for r in fires["items"]} == {"fire"}
    one = (await rules.http.get("/api/v1/rules/aq-o3", headers=VIEWER)).json()
    assert (one["for"], one["match"]["metric"], one["clear_when"]) == ("10m", ["o3"],
                                                                      "value <= 180")


async def test_no_token_is_401_and_writes_are_for_admins_and_operators(rules: Rules) -> None:
    assert (await rules.http.get("/api/v1/rules")).status_code == 401
    for who in (VIEWER, RESPONDER):
        assert (await rules.http.post("/api/v1/rules", json=GAS_RULE, headers=who)
                ).status_code == 403
        assert (await rules.http.post("/api/v1/rules/aq-o3/disable", headers=who)
                ).status_code == 403
        assert (await rules.http.post("/api/v1/rules/backtest", headers=who, json={
            "rule_ids": ["aq-o3"], "start": "2026-11-20T00:00:00Z",
            "end": "2026-11-21T00:00:00Z"})).status_code == 403
    assert "gas-test" not in in_file(rules.path)


async def test_create_writes_the_rule_file_and_lists_it(rules: Rules) -> None:
    created = await rules.http.post("/api/v1/rules", json=GAS_RULE, headers=OPERATOR)
    assert created.status_code == 201, created.text
    assert created.json()["for"] == "2m" and created.json()["enabled"] is False
    assert in_file(rules.path)["gas-test"] is False
    stored = next(r for r in load_rules_file(rules.path) if r.id == "gas-test")
    assert (stored.for_ms, stored.severity) == (2 * MIN, "red if value >= 50 else orange")
    listed = (await rules.http.get("/api/v1/rules", headers=VIEWER)).json()
    assert listed["items"][-1]["id"] == "gas-test"
    again = await rules.http.post("/api/v1/rules", json=GAS_RULE, headers=ADMIN)
    assert again.status_code == 409 and "gas-test" in again.json()["detail"]
    assert not list(rules.path.parent.glob(".rules.yaml.*"))  # no temporary file left behind


async def test_the_engine_runs_what_the_api_wrote(rules: Rules) -> None:
    registry = Registry.build(load_catalogue(), DEVICES)
    raised: list[Detection] = []

    async def sink(found: list[Detection], now_ms: int) -> None:
        raised.extend(found)

    judge = Judge(lambda: registry, sink, rules_path=rules.path)
    slot = registry.slot("gas-0002", "lel_pct")
    live = {**GAS_RULE, "enabled": True, "for": None}
    assert (await rules.http.post("/api/v1/rules", json=live, headers=ADMIN)).status_code == 201
    assert judge.reload_if_changed() and judge.rules[-1].id == "gas-test"
    await judge.on_batch(ReadingBatch.from_columns([slot], [T0_MS], [60.0]), T0_MS)
    assert [(d.subject, d.severity) for d in raised if d.rule_id == "gas-test"] == [
        ("gas-0002", Severity.RED)]
    assert (await rules.http.post("/api/v1/rules/gas-test/disable", headers=ADMIN)
            ).status_code == 200
    assert judge.reload_if_changed() and not judge.rules[-1].enabled


async def test_update_enable_and_disable(rules: Rules) -> None:
    spec = {k: v for k, v in GAS_RULE.items() if k != "id"}
    missing = await rules.http.put("/api/v1/rules/gas-test", json=spec, headers=ADMIN)
    assert missing.status_code == 404
    assert (await rules.http.post("/api/v1/rules", json=GAS_RULE, headers=ADMIN)).status_code == 201
    changed = await rules.http.put("/api/v1/rules/gas-test", headers=ADMIN,
                                   json={**spec, "when": "value >= 25", "for": None})
    assert changed.status_code == 200 and changed.json()["when"] == "value >= 25"
    stored = next(r for r in load_rules_file(rules.path) if r.id == "gas-test")
    assert (stored.when, stored.for_ms) == ("value >= 25", 0)
    enabled = await rules.http.post("/api/v1/rules/gas-test/enable", headers=OPERATOR)
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert in_file(rules.path)["gas-test"] is True
    disabled = await rules.http.post("/api/v1/rules/aq-o3/disable", headers=OPERATOR)
    assert disabled.json()["enabled"] is False and in_file(rules.path)["aq-o3"] is False
    text = rules.path.read_text()  # only the edited rule was rewritten: the pack's notes stay
    assert "# IAQI 100 (NO2 1-h 200 ug/m3)" in text and "# --- Noise: GB 3096-2008" in text
    assert text.index("id: gas-test") > text.index("id: aq-o3")  # appended at the end
    got = (await rules.http.get("/api/v1/rules/aq-o3", headers=VIEWER)).json()
    assert got["enabled"] is False
    assert (await rules.http.post("/api/v1/rules/nope/enable", headers=ADMIN)).status_code == 404
    assert (await rules.http.get("/api/v1/rules/nope", headers=ADMIN)).status_code == 404


async def test_delete_takes_the_rule_out_of_the_file_and_the_audit_log_has_it(
    rules: Rules,
) -> None:
    root = bearer(Role.admin, subject="root")
    gone = await rules.http.delete("/api/v1/rules/aq-o3", headers=root)
    assert gone.status_code == 204 and gone.content == b""
    assert "aq-o3" not in in_file(rules.path)
    assert (await rules.http.get("/api/v1/rules/aq-o3", headers=VIEWER)).status_code == 404
    listed = (await rules.http.get("/api/v1/rules", headers=VIEWER)).json()
    assert "aq-o3" not in [r["id"] for r in listed["items"]]
    assert listed["total"] == len(load_default_pack()) - 1
    text = rules.path.read_text()  # only the deleted rule's lines went: the pack's notes stay
    assert "# IAQI 100 (O3 1-h 200 ug/m3)" not in text
    assert "# IAQI 100 (NO2 1-h 200 ug/m3)" in text and "HJ 633-2012" in text
    assert (await rules.http.delete("/api/v1/rules/aq-o3", headers=ADMIN)).status_code == 404
    assert (await rules.http.delete("/api/v1/rules/aq-no2", headers=OPERATOR)).status_code == 204
    entries = (await rules.http.get("/api/v1/audit", headers=ADMIN)).json()["items"]
    deletes = [(e["actor"], e["route"], e["status"], e["entity_id"]) for e in entries
               if e["action"] == "DELETE"]
    assert deletes == [  # newest first
        ("operator-user", "/api/v1/rules/{rule_id}", 204, "/api/v1/rules/aq-no2"),
        ("admin-user", "/api/v1/rules/{rule_id}", 404, "/api/v1/rules/aq-o3"),
        ("root", "/api/v1/rules/{rule_id}", 204, "/api/v1/rules/aq-o3"),
    ]


async def test_delete_refuses_a_rule_other_rules_count_and_callers_who_may_not_write(
    rules: Rules,
) -> None:
    before = rules.path.read_bytes()
    counted = await rules.http.delete("/api/v1/rules/gas-lel", headers=ADMIN)
    assert counted.status_code == 409 and "gas-leak-cluster" in counted.json()["detail"]
    flood = await rules.http.delete("/api/v1/rules/water-rise", headers=ADMIN)
    assert flood.status_code == 409 and "flood-cluster" in flood.json()["detail"]
    for who in (VIEWER, RESPONDER):
        assert (await rules.http.delete("/api/v1/rules/aq-o3", headers=who)).status_code == 403
    assert (await rules.http.delete("/api/v1/rules/aq-o3")).status_code == 401
    assert rules.path.read_bytes() == before
    assert (await rules.http.delete("/api/v1/rules/gas-leak-cluster", headers=ADMIN)
            ).status_code == 204
    assert (await rules.http.delete("/api/v1/rules/gas-lel", headers=ADMIN)).status_code == 204


async def test_delete_refuses_a_rule_counted_only_in_another_rules_severity(rules: Rules) -> None:
    cell = {"id": "gas-cell", "category": "safety", "when": "count_in(grid, rule=gas-lel) >= 1",
            "severity": "red if count_in(grid, rule=aq-pm25) >= 1 else orange"}
    assert (await rules.http.post("/api/v1/rules", json=cell, headers=ADMIN)).status_code == 201
    before = rules.path.read_bytes()
    refused = await rules.http.delete("/api/v1/rules/aq-pm25", headers=ADMIN)
    assert refused.status_code == 409 and "gas-cell" in refused.json()["detail"]
    assert rules.path.read_bytes() == before


async def test_deleting_a_rule_closes_its_open_alerts_at_the_engines_next_reload(
    world: World, rules: Rules,
) -> None:
    registry = Registry.build(load_catalogue(), DEVICES)
    uw = Alerting(world.context.sessions, lambda: registry, MqttConfig("127.0.0.1", 9, "unused"))
    judge = Judge(lambda: registry, uw.handle, rules_path=rules.path, on_reset=uw.close_rules)
    live = {**GAS_RULE, "enabled": True, "for": None}
    assert (await rules.http.post("/api/v1/rules", json=live, headers=ADMIN)).status_code == 201
    assert await judge.reload()
    slot = registry.slot("gas-0002", "lel_pct")
    await judge.on_batch(ReadingBatch.from_columns([slot], [T0_MS], [60.0]), T0_MS)
    [ours] = [a for a in uw.service.open_alerts() if a.rule_id == "gas-test"]
    others = {a.id for a in uw.service.open_alerts()} - {ours.id}
    assert others  # the pack's gas rule fired as well, and stays open

    assert (await rules.http.delete("/api/v1/rules/gas-test", headers=ADMIN)).status_code == 204
    assert await judge.reload()
    assert "gas-test" not in {r.id for r in judge.engine.rules}
    assert {a.id for a in uw.service.open_alerts()} == others
    context = dataclasses.replace(world.context, rules=RulesPart(rules.path, lambda: registry),
                                  alerts=AlertsPart(uw.service, uw.hub, uw.reload_routing))
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        closed = (await http.get(f"/api/v1/alerts/{ours.id}", headers=VIEWER)).json()
    assert closed["state"] == "closed"
    await judge.on_batch(ReadingBatch.from_columns([slot], [T0_MS + MIN], [60.0]), T0_MS + MIN)
    assert not [a for a in uw.service.open_alerts() if a.rule_id == "gas-test"]  # not evaluated


async def test_an_invalid_expression_is_422_with_its_column_and_the_file_is_untouched(
    rules: Rules,
) -> None:
    before = rules.path.read_bytes()
    bad = await rules.http.post("/api/v1/rules", headers=ADMIN,
                                json={**GAS_RULE, "when": "value >> 20"})
    assert bad.status_code == 422
    assert bad.json()["detail"] == {
        "reason": "when: unexpected '>' at column 8: 'value >> 20'", "rule_id": "gas-test",
        "field": "when", "line": None, "column": 8,
    }
    severity = await rules.http.post("/api/v1/rules", headers=ADMIN,
                                     json={**GAS_RULE, "severity": "red if value >= 50"})
    assert severity.status_code == 422 and severity.json()["detail"]["field"] == "severity"
    dangling = await rules.http.post("/api/v1/rules", headers=ADMIN, json={
        **GAS_RULE, "match": {}, "when": "count_in(grid, rule=nope) >= 2", "severity": "red"})
    assert dangling.status_code == 422 and "nope" in dangling.json()["detail"]["reason"]
    duration = await rules.http.put("/api/v1/rules/aq-o3", headers=ADMIN, json={
        **{k: v for k, v in GAS_RULE.items() if k != "id"}, "for": "ten minutes"})
    assert duration.status_code == 422 and duration.json()["detail"]["field"] == "for"
    unknown = await rules.http.post("/api/v1/rules", headers=ADMIN,
                                    json={**GAS_RULE, "category": "weather"})
    assert unknown.status_code == 422
    assert rules.path.read_bytes() == before


async def test_validate_reports_line_and_column_of_rule_file_text(rules: Rules) -> None:
    text = ("rules:\n"
            "  - id: ok\n    category: fire\n    when: value > 1\n"
            "  - id: broken\n    category: fire\n    when: mean(5m) > > 3\n")
    result = await rules.http.post("/api/v1/rules/validate", headers=OPERATOR, json={"text": text})
    assert result.status_code == 200
    body = result.json()
    assert body["valid"] is False
    problem = body["problem"]
    assert (problem["line"], problem["column"], problem["field"], problem["rule_id"]) == (
        7, 12, "when", "broken")
    yaml_error = (await rules.http.post("/api/v1/rules/validate", headers=OPERATOR,
                                        json={"text": "rules: [\n  - id: x\n"})).json()
    assert yaml_error["valid"] is False and yaml_error["problem"]["line"] is not None
    good = (await rules.http.post("/api/v1/rules/validate", headers=OPERATOR,
                                  json={"text": text.replace("> > 3", "> 3")})).json()
    assert good == {"valid": True, "rule_ids": ["ok", "broken"], "problem": None}


async def test_an_alias_bomb_is_refused_with_its_line(rules: Rules) -> None:
    """Nine nested aliases would stand for a billion strings; the first alias is refused."""
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    text = "\n".join(levels) + "\nrules: []\n"
    result = await rules.http.post("/api/v1/rules/validate", headers=OPERATOR, json={"text": text})
    assert result.status_code == 422
    body = result.json()
    assert body["type"] == "urn:urbanwatch:problem:refused-rule-text"
    assert body["detail"]["line"] == 2 and "aliases" in body["detail"]["reason"]


async def test_only_writers_validate_rules(rules: Rules) -> None:
    refused = await rules.http.post("/api/v1/rules/validate", headers=VIEWER, json={"text": "[]"})
    assert refused.status_code == 403


async def test_validate_one_rule_against_the_current_set(rules: Rules) -> None:
    spatial = {"id": "gas-cluster", "category": "safety",
               "when": "count_in(grid, rule=gas-test) >= 2", "severity": "red"}
    alone = (await rules.http.post("/api/v1/rules/validate", headers=OPERATOR,
                                   json={"rule": spatial})).json()
    assert alone["valid"] is False and "gas-test" in alone["problem"]["reason"]
    assert (await rules.http.post("/api/v1/rules", json=GAS_RULE, headers=ADMIN)).status_code == 201
    fine = (await rules.http.post("/api/v1/rules/validate", headers=OPERATOR,
                                  json={"rule": spatial})).json()
    assert fine["valid"] is True and fine["rule_ids"][-2:] == ["gas-test", "gas-cluster"]
    assert "gas-cluster" not in in_file(rules.path)  # validating saves nothing
    both = await rules.http.post("/api/v1/rules/validate", headers=OPERATOR,
                                 json={"rule": spatial, "text": "[]"})
    assert both.status_code == 422


async def test_backtest_bad_input(rules: Rules) -> None:
    url = "/api/v1/rules/backtest"
    window = {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}
    backwards = await rules.http.post(url, headers=OPERATOR, json={
        "rule_ids": ["aq-o3"], "start": window["end"], "end": window["start"]})
    assert backwards.status_code == 422 and backwards.json()["detail"]["field"] == "end"
    same = await rules.http.post(url, headers=OPERATOR, json={
        "rule_ids": ["aq-o3"], "start": window["start"], "end": window["start"]})
    assert same.status_code == 422
    too_long = await rules.http.post(url, headers=OPERATOR, json={
        "rule_ids": ["aq-o3"], "start": "2026-01-01T00:00:00Z", "end": window["end"]})
    assert too_long.status_code == 422
    naive = await rules.http.post(url, headers=OPERATOR, json={
        "rule_ids": ["aq-o3"], "start": "2026-11-20T00:00:00", "end": window["end"]})
    assert naive.status_code == 422
    assert (await rules.http.post(url, headers=OPERATOR, json=window)).status_code == 422
    unknown = await rules.http.post(url, headers=OPERATOR, json={"rule_ids": ["nope"], **window})
    assert unknown.status_code == 404
    bad_rule = await rules.http.post(url, headers=OPERATOR, json={
        "rule": {**GAS_RULE, "when": "value >"}, **window})
    assert bad_rule.status_code == 422 and bad_rule.json()["detail"]["column"] == 8


async def test_backtest_shows_what_a_disabled_rule_would_have_raised(
    rules: Rules, influx_db: InfluxClient
) -> None:
    registry = Registry.build(load_catalogue(), DEVICES)
    t0 = (int(time.time()) // 3600 - 30) * 3_600_000  # inside the retention period
    k = np.arange(30)
    lel = np.where((k >= 10) & (k < 20), 60.0, 5.0)  # above 50 % LEL for ten minutes
    batch = ReadingBatch.from_columns(np.full(30, registry.slot("gas-0001", "lel_pct")),
                                      t0 + k * MIN, lel)
    lines = LineEncoder(registry).encode(batch)
    await influx_db.write(lines.chunk(0, len(lines)))
    assert (await rules.http.post("/api/v1/rules", json=GAS_RULE, headers=ADMIN)).status_code == 201
    response = await rules.http.post("/api/v1/rules/backtest", headers=OPERATOR, json={
        "rule_ids": ["gas-test"], "start": _iso(t0), "end": _iso(t0 + 60 * MIN)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["readings"] == 30 and body["series"] == 2  # both gas detectors match
    [result] = body["rules"]
    assert result["rule_id"] == "gas-test" and result["raised_total"] == 1
    [raised] = result["raised"]
    assert (raised["subject"], raised["severity"], raised["value"]) == ("gas-0001", "red", 60.0)
    assert t0 + 12 * MIN <= raised["ts_ms"] <= t0 + 13 * MIN  # after `for: 2m`, at a tick
    [cleared] = result["cleared"]
    assert t0 + 20 * MIN <= cleared["ts_ms"] <= t0 + 21 * MIN
    inline = await rules.http.post("/api/v1/rules/backtest", headers=OPERATOR,
                                   json={"rule": {**GAS_RULE, "id": "draft", "when": "value > 99"},
                                         "start": _iso(t0), "end": _iso(t0 + 60 * MIN)})
    assert inline.status_code == 200
    assert [(r["rule_id"], r["raised_total"]) for r in inline.json()["rules"]] == [("draft", 0)]


async def test_backtest_reads_the_registry_attributes_and_the_city_time_zone(
    world: World, tmp_path: Path, influx_db: InfluxClient
) -> None:
    levels = {"warning_level": 3.0, "guaranteed_level": 4.0, "historical_max_level": 5.0}
    gauge = dataclasses.replace(DEVICES[2], attributes=levels)
    registry = Registry.build(load_catalogue(), [*DEVICES[:2], gauge, DEVICES[3]])
    path = tmp_path / "rules.yaml"
    seed_rule_file(path)
    context = dataclasses.replace(
        world.context, rules=RulesPart(path, lambda: registry), timezone="Asia/Kolkata"
    )
    t0 = (int(time.time()) // 3600 - 30) * 3_600_000  # on the hour, inside the retention
    k = np.arange(30)
    level = np.where((k >= 10) & (k < 20), 4.2, 2.0)  # above the guaranteed level for 10 min
    batch = ReadingBatch.from_columns(np.full(30, registry.slot(gauge.id, "level_m")),
                                      t0 + k * MIN, level)
    lines = LineEncoder(registry).encode(batch)
    await influx_db.write(lines.chunk(0, len(lines)))
    local_hour = (time.gmtime(t0 / 1000).tm_hour + 5) % 24  # UTC+5:30, in the first half hour
    by_hour = {"id": "by-hour", "name": "By hour", "category": "flood",
               "match": {"device_type": ["water_level"], "metric": ["level_m"]},
               "when": f"value > 0 and hour() == {local_hour}", "severity": "blue"}
    window = {"start": _iso(t0), "end": _iso(t0 + 60 * MIN)}
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        flood = await http.post("/api/v1/rules/backtest", headers=OPERATOR,
                                json={"rule_ids": ["water-level"], **window})
        hourly = await http.post("/api/v1/rules/backtest", headers=OPERATOR,
                                 json={"rule": by_hour, **window})
    assert flood.status_code == 200, flood.text
    [result] = flood.json()["rules"]
    [raised] = result["raised"]
    assert (raised["subject"], raised["severity"], raised["value"]) == (gauge.id, "orange", 4.2)
    assert raised["ts_ms"] == t0 + 10 * MIN
    [cleared] = result["cleared"]
    assert cleared["ts_ms"] == t0 + 20 * MIN
    assert hourly.status_code == 200, hourly.text
    assert [r["raised_total"] for r in hourly.json()["rules"]] == [1]


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
