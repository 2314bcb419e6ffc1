"""`Alerting` over real SQL (SQLite and PostgreSQL): the routing file hot-reloaded, alerts of
changed/removed rules closed after a rule reload, alerts of devices that left service closed,
and the registry's gateways and the stored geography's grid neighbours fed to the alert
service."""

from __future__ import annotations

import logging
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts.errors import RoutingError
from alerts.model import AlertState, TimelineKind
from alerts.routing import RoutingSummary
from alerts.sql.tables import AlertRow, AuditRow
from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.geo import Area
from devices.registry import Device, DeviceStatus, Registry
from devices.store import DeviceStore
from ingest.config import MqttConfig
from rules.detection import Category, Detection, DetectionState, Severity
from tests.alerts.conftest import T0
from urbanwatch.alerting import LEFT_SERVICE, RESET_REASON, Alerting, open_alerts
from urbanwatch.judging import Judge
from urbanwatch.settings import AlertsSettings, SmtpSettings

MQTT = MqttConfig("127.0.0.1", 9, "unused")  # the channel is never started here
SHIPPED = resources.files("alerts").joinpath("data/routing.yaml").read_text()
GAS_ROUTE = "    handler: gas-company\n    team: gas-emergency\n"


def detection(rule: str, device: str, category: Category = Category.SAFETY, *, ts_ms: int = T0,
              district: str = "d1", grid: str | None = "c1",
              state: DetectionState = DetectionState.FIRING) -> Detection:  # fmt: skip
    return Detection(rule, category, device, state, Severity.RED, ts_ms, 1.0, device, "lel_pct",
                     district, grid)  # fmt: skip


def alerting(sessions, registry: Registry, routing_path: Path | None = None) -> Alerting:
    return Alerting(sessions, lambda: registry, MQTT, AlertsSettings(routing_path=routing_path))


def gas_registry(*ids: str) -> Registry:
    devices = [Device(i, "gas", "d1", 39.9, 116.4, "c1") for i in ids]
    return Registry.build(load_catalogue(), devices)


# --- the routing file ---------------------------------------------------------------------


async def test_a_changed_routing_file_is_followed_and_a_broken_one_kept_out(
    sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(SHIPPED)
    uw = alerting(sessions, gas_registry("gas-1", "gas-2"), path)
    assert not await uw.reload_routing_if_changed()

    fire = "    handler: fire-rescue\n    team: fire-station\n"
    path.write_text(SHIPPED.replace(GAS_ROUTE, fire))
    assert await uw.reload_routing_if_changed() and uw.routing_reloads == 1
    await uw.handle([detection("gas-lel", "gas-1")], T0)
    [incident] = await uw.service.incidents()
    assert (incident.handler_id, incident.team_id) == ("fire-rescue", "fire-station")

    broken = SHIPPED.replace(GAS_ROUTE, "    handler: gas-company\n    team: nobody\n")
    line = broken.splitlines().index("    team: nobody") + 1
    path.write_text(broken)
    with caplog.at_level(logging.ERROR, logger="urbanwatch.alerting"):
        assert not await uw.reload_routing_if_changed()
    assert uw.routing_errors == 1
    assert (f"line {line}, column 11, routes.0.team: route 0: handler 'gas-company' "
            "has no team 'nobody'") in caplog.text
    assert "the previous routing stays" in caplog.text
    assert uw.service.routing.routes[0].team == "fire-station"  # still the last good file
    assert not await uw.reload_routing_if_changed()  # the same broken file is not retried


async def test_reload_routing_reports_what_it_loaded_or_raises(sessions, tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(SHIPPED)
    uw = alerting(sessions, gas_registry("gas-1"), path)
    summary = await uw.reload_routing()
    assert summary == RoutingSummary(str(path), handlers=7, teams=9, policies=3, routes=8)

    path.write_text(SHIPPED.replace("version: 1", "version: 1\n  oops: [\n"))
    with pytest.raises(RoutingError, match=r"line \d+, column \d+: not valid YAML") as caught:
        await uw.reload_routing()
    assert caught.value.source == str(path)
    path.unlink()
    with pytest.raises(RoutingError, match="cannot read the file"):
        await uw.reload_routing()
    assert uw.service.routing.routes[0].team == "gas-emergency"

    shipped = alerting(sessions, gas_registry("gas-1"))
    assert (await shipped.reload_routing()).source == "alerts/data/routing.yaml"


# --- rule reloads close the alerts of changed or removed rules ----------------------------

RULES = """
- id: gas-high
  category: safety
  match: {{device_type: gas, metric: lel_pct}}
  when: value >= {threshold}
  severity: red
- id: gas-any
  category: safety
  match: {{device_type: gas, metric: lel_pct}}
  when: value >= 1
  severity: yellow
"""


async def test_a_rule_reload_closes_the_alerts_of_changed_and_removed_rules(
    sessions, tmp_path: Path,
) -> None:
    registry = gas_registry("gas-1")
    uw = alerting(sessions, registry)
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(threshold=50))
    judge = Judge(lambda: registry, uw.handle, rules_path=path, on_reset=uw.close_rules)
    slot = registry.slot("gas-1", "lel_pct")
    await judge.on_batch(ReadingBatch.from_columns([slot], [T0], [70.0]), T0)
    assert {a.rule_id for a in uw.service.open_alerts()} == {"gas-high", "gas-any"}
    [incident] = await uw.service.incidents()

    path.write_text(RULES.format(threshold=60))  # gas-high changed, gas-any unchanged
    assert await judge.reload()
    assert [a.rule_id for a in uw.service.open_alerts()] == ["gas-any"]
    async with sessions() as session:
        rows = (await session.scalars(select(AlertRow).where(AlertRow.rule_id == "gas-high"))).all()
        audit = (await session.scalars(select(AuditRow).where(AuditRow.entity == "alert"))).all()
    assert [r.state for r in rows] == [AlertState.CLOSED.value]
    assert [(a.action, a.entity_id, a.detail) for a in audit] == [
        ("close", rows[0].id, RESET_REASON)]
    timeline = (await uw.service.incident(incident.id)).timeline
    cleared = [e for e in timeline if e.kind is TimelineKind.ALERT_CLEARED]
    assert [e.detail for e in cleared] == [f"{rows[0].id} ({RESET_REASON})"]

    path.write_text(RULES.format(threshold=60).split("- id: gas-any")[0])  # gas-any removed
    assert await judge.reload()
    assert uw.service.open_alerts() == []


# --- gateways and grid neighbours from the registry and the stored geography --------------


def square(area_id: str, kind: str, district: str, lon: float) -> Area:
    ring = ((lon, 0.0), (lon + 1, 0.0), (lon + 1, 1.0), (lon, 1.0), (lon, 0.0))
    return Area(area_id, area_id, kind, district, ((ring,),))  # type: ignore[arg-type]


async def test_an_offline_gateway_inhibits_its_childrens_offline_alerts(sessions) -> None:
    store = DeviceStore(sessions)
    await store.add([
        Device("gw-1", "weather", "d1", 0.5, 0.5, "c1"),
        Device("aq-1", "air_quality", "d1", 0.5, 0.5, "c1", gateway="gw-1"),
        Device("aq-2", "air_quality", "d1", 0.5, 0.5, "c1"),
    ])  # fmt: skip
    uw = alerting(sessions, await store.load_registry(load_catalogue()))
    await uw.refresh_topology()
    offline = [detection("device-offline", d, Category.DEVICE) for d in ("gw-1", "aq-1", "aq-2")]
    out = await uw.service.handle(offline, T0)
    suppressed = {t.alert.device_id: t.suppressed_by for t in out.transitions}
    gw_alert = next(t.alert.id for t in out.transitions if t.alert.device_id == "gw-1")
    assert suppressed == {"gw-1": None, "aq-1": f"inhibit:{gw_alert}", "aq-2": None}
    [incident] = await uw.service.incidents()
    assert sorted(incident.devices) == ["aq-2", "gw-1"]  # the inhibited child summons nobody


async def test_alerts_in_neighbouring_cells_group_into_one_incident(sessions) -> None:
    await DeviceStore(sessions).put_areas([
        square("d1", "district", "d1", 0), square("d2", "district", "d2", 1),
        square("d3", "district", "d3", 5),
        square("c1", "grid", "d1", 0), square("c2", "grid", "d2", 1), square("c3", "grid", "d3", 5),
    ])  # fmt: skip
    uw = alerting(sessions, gas_registry())
    flood = Category.FLOOD
    before = [detection("water-level", "wl-1", flood), detection("water-level", "wl-2", flood,
              district="d2", grid="c2")]  # fmt: skip
    await uw.service.handle(before, T0)  # neighbours not fed yet: different districts, apart
    assert len(await uw.service.incidents()) == 2

    await uw.refresh_topology()
    await uw.service.handle([
        detection("gas-lel", "gas-1"),
        detection("gas-lel", "gas-2", district="d2", grid="c2"),
        detection("gas-lel", "gas-3", district="d3", grid="c3"),
    ], T0 + 1000)  # fmt: skip
    safety = [i for i in await uw.service.incidents() if i.category is Category.SAFETY]
    assert sorted(sorted(i.grids) for i in safety) == [["c1", "c2"], ["c3"]]


# --- devices that leave service close their open alerts -----------------------------------


async def test_a_device_leaving_service_closes_its_alerts_and_is_judged_afresh_on_return(
    sessions, tmp_path: Path,
) -> None:
    registry = gas_registry("gas-1", "gas-2")
    uw = Alerting(sessions, lambda: registry, MQTT)  # the live registry, as the judge's
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(threshold=50).split("- id: gas-any")[0])  # gas-high only
    judge = Judge(lambda: registry, uw.handle, rules_path=path, on_leave=uw.close_devices)
    lel = [registry.slot(d, "lel_pct") for d in ("gas-1", "gas-2")]
    await judge.on_batch(ReadingBatch.from_columns(lel, [T0, T0], [70.0, 70.0]), T0)
    assert len(uw.service.open_alerts()) == 2

    registry = registry.updated([replace(registry.get("gas-1"), status=DeviceStatus.MAINTENANCE)])
    await judge.on_batch(ReadingBatch.from_columns(lel[1:], [T0 + 1], [70.0]), T0 + 1)
    assert {a.device_id for a in uw.service.open_alerts()} == {"gas-2"}
    reason = LEFT_SERVICE[DeviceStatus.MAINTENANCE]
    async with sessions() as session:
        of_gas_1 = select(AlertRow).where(AlertRow.device_id == "gas-1")
        closed = (await session.scalars(of_gas_1)).all()
        audit = (await session.scalars(select(AuditRow).where(AuditRow.entity == "alert"))).all()
    assert [r.state for r in closed] == [AlertState.CLOSED.value]
    assert [(a.entity_id, a.detail) for a in audit] == [(closed[0].id, reason)]
    [incident] = await uw.service.incidents()  # gas-2 still burns: it stays open
    cleared = [e.detail for e in incident.timeline if e.kind is TimelineKind.ALERT_CLEARED]
    assert cleared == [f"{closed[0].id} ({reason})"]

    registry = registry.updated([replace(registry.get("gas-1"), status=DeviceStatus.ACTIVE)])
    await judge.on_batch(ReadingBatch.from_columns([], [], []), T0 + 2)  # back, heard now
    await judge.on_batch(ReadingBatch.from_columns(lel[:1], [T0 + 3], [70.0]), T0 + 3)
    [again] = [a for a in uw.service.open_alerts() if a.device_id == "gas-1"]
    assert again.rule_id == "gas-high" and again.id != closed[0].id


async def test_open_alerts_of_a_device_that_left_service_while_stopped_close_at_restore(
    sessions,
) -> None:
    registry = gas_registry("gas-1")
    uw = Alerting(sessions, lambda: registry, MQTT)
    await uw.handle([detection("gas-high", "gas-1")], T0)
    registry = registry.updated([replace(registry.get("gas-1"), status=DeviceStatus.RETIRED)])
    judge = Judge(lambda: registry, uw.handle, on_leave=uw.close_devices, clock_ms=lambda: T0 + 1)
    await judge.restore(ReadingBatch.from_columns([], [], []), open_alerts(uw))
    assert uw.service.open_alerts() == []
    [incident] = await uw.service.incidents()
    assert [e.detail.split(" ", 1)[1] for e in incident.timeline
            if e.kind is TimelineKind.ALERT_CLEARED] == [f"({LEFT_SERVICE[DeviceStatus.RETIRED]})"]


def test_e_mail_steps_without_a_mail_server_are_warned_about(
    sessions, caplog: pytest.LogCaptureFixture
) -> None:
    example = Path(__file__).parents[2] / "docs" / "routing-oncall.example.yaml"
    with caplog.at_level(logging.WARNING, logger="urbanwatch.alerting"):
        Alerting(sessions, lambda: gas_registry(), MQTT, AlertsSettings(routing_path=example))
    assert [r.getMessage() for r in caplog.records] == [
        "policy gas e-mails lead after 0 s, but no mail server is set ([smtp] host): "
        "those e-mails will fail"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="urbanwatch.alerting"):
        Alerting(sessions, lambda: gas_registry(), MQTT, AlertsSettings(routing_path=example),
                 smtp=SmtpSettings(host="mail.example.org"))
    assert caplog.records == []


HELD_RULE = """
- id: gas-held
  category: safety
  match: {device_type: gas, metric: lel_pct}
  when: value >= 20
  for: 5m
  severity: red
"""


async def test_an_alert_cleared_before_a_restart_is_not_raised_again_after_it(
    sessions, tmp_path: Path,
) -> None:
    registry = gas_registry("gas-1")
    uw = alerting(sessions, registry)
    await uw.handle([detection("gas-held", "gas-1")], T0)
    await uw.handle([detection("gas-held", "gas-1", ts_ms=T0 + 1,
                               state=DetectionState.CLEARED)], T0 + 1)
    assert [a.state for a in uw.service.open_alerts()] == [AlertState.CLEARED]  # kept an hour
    path = tmp_path / "rules.yaml"
    path.write_text(HELD_RULE)
    judge = Judge(lambda: registry, uw.handle, rules_path=path, clock_ms=lambda: T0 + 2)
    await judge.restore(ReadingBatch.from_columns([], [], []), open_alerts(uw))
    await judge.on_batch(ReadingBatch.from_columns([], [], []), T0 + 10 * 60_000)  # past `for`
    assert [a.state for a in uw.service.open_alerts()] == [AlertState.CLEARED]


async def test_a_detection_the_store_refuses_as_data_is_set_aside_and_the_rest_flow(
    sessions,
) -> None:
    """A value the store can never take (not a number: SQLite has no NaN) must not hold the
    detections behind it for ever: it is set aside and counted, the others are stored."""
    uw = alerting(sessions, gas_registry("gas-1", "gas-2", "gas-3"))
    poison = replace(detection("gas-lel", "gas-2"), value=float("nan"))
    await uw.handle([detection("gas-lel", "gas-1"), poison], T0)
    await uw.handle([detection("gas-lel", "gas-3", ts_ms=T0 + 1)], T0 + 1)
    stored = {a.device_id for a in uw.service.open_alerts()}
    assert {"gas-1", "gas-3"} <= stored
    assert uw.backlog.size == 0 and await uw.backlog.ready()
    assert uw.backlog.rejected == (0 if "gas-2" in stored else 1)
