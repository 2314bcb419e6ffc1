"""`AlertService` over a real database (SQLite and PostgreSQL): detections in, incidents, the
outbox, escalation that survives a restart, storm folding, operator actions, silences, reports;
and end to end through the dispatcher to a real HTTP receiver and Mosquitto."""

from __future__ import annotations

import asyncio
import json
from importlib import resources

import pytest
from sqlalchemy import select

from alerts.channels.dispatcher import Dispatcher, RetryPolicy
from alerts.channels.live import LiveHub
from alerts.channels.mqtt import MqttChannel
from alerts.channels.webhook import WebhookChannel, verify
from alerts.decisions.silences import Field, Matcher, Silence
from alerts.decisions.storm import StormControl
from alerts.errors import TransitionError, UnknownIncidentError
from alerts.model import AlertState, IncidentState, TimelineKind
from alerts.routing import load_routing, parse_routing
from alerts.service import AlertService
from alerts.sql import outbox
from alerts.sql.tables import AuditRow
from rules.detection import Category, Detection, DetectionState, Severity
from tests.alerts.channels.test_channels import subscribe
from tests.alerts.conftest import MIN, T0
from tests.support.polling import eventually

GAS_TYPES = {f"gas-{n}": "gas" for n in range(10)}


def gas(n=1, ts_ms=T0, state=DetectionState.FIRING, severity=Severity.RED, district="dongcheng"):
    return Detection(
        "gas-high",
        Category.SAFETY,
        f"gas-{n}",
        state,
        severity,
        ts_ms,
        80.0,
        f"gas-{n}",
        "ch4",
        district,
        f"{district}-g{n}",
    )


def flood(n=1, ts_ms=T0, district="dongcheng"):
    return Detection(
        "water-rise",
        Category.FLOOD,
        f"wl-{n}",
        DetectionState.FIRING,
        Severity.RED,
        ts_ms,
        1.0,
        f"wl-{n}",
        "level_m",
        district,
        None,
    )


def service(sessions, routing=None, **kwargs) -> AlertService:
    return AlertService(sessions, routing or load_routing(), device_types=GAS_TYPES, **kwargs)


async def rows(sessions, **where):
    async with sessions() as session:
        return await outbox.rows(session, **where)


async def test_a_red_gas_detection_becomes_one_dispatched_incident(sessions):
    hub = LiveHub()
    live = hub.subscribe(lambda e: e["type"] == "incident")
    svc = service(sessions, hub=hub)
    out = await svc.handle([gas(1), gas(2, T0 + 1)], T0 + 10)
    [incident] = await svc.incidents()
    assert (incident.state, incident.team_id, incident.handler_id) == (
        IncidentState.DISPATCHED,
        "gas-emergency",
        "gas-company",
    )
    assert len(incident.members) == 2 and incident.severity is Severity.RED
    key = f"{incident.id}:dispatched:2:gas-emergency"  # entry 2: opened, alert added, dispatched
    assert out.notified == (key,) and out.folded == ()
    [row] = await rows(sessions)
    assert (row.key, row.channel, row.target, row.status) == (
        key,
        "mqtt",
        "dispatch/gas-emergency",
        "pending",
    )
    assert json.loads(row.body)["incident"]["devices"] == ["gas-1", "gas-2"]
    kinds = [(await anext(live))["kind"] for _ in range(3)]
    assert kinds == ["opened", "alert_added", "dispatched"]


async def test_a_district_flood_is_one_incident_and_a_replay_adds_nothing(sessions):
    svc = service(sessions)
    await svc.handle([flood(n, T0 + n) for n in range(40)], T0 + 100)
    again = service(sessions)  # a restarted process replays the same batch
    out = await again.handle([flood(n, T0 + n) for n in range(40)], T0 + 100)
    assert out.transitions == () and out.notified == ()
    [incident] = await again.incidents()
    assert len(incident.members) == 40 and incident.team_id == "drainage-crew"
    assert len(await rows(sessions)) == 1
    assert len(again.open_alerts()) == 40


async def test_missed_deadline_escalates_and_survives_a_restart(sessions):
    svc = service(sessions)
    await svc.handle([flood(1)], T0)
    [incident] = await svc.incidents()
    early = await svc.tick(T0 + 4 * MIN)  # red: 5 minutes to acknowledge (repeats every 2)
    assert [k.split(":")[1] for k in early.notified] == ["repeat"]
    out = await svc.tick(T0 + 5 * MIN)
    escalated = await svc.incident(incident.id)
    assert (escalated.escalation_level, escalated.team_id) == (1, "flood-control")
    assert out.notified == (f"{incident.id}:escalated:3:flood-control",)
    restarted = service(sessions)  # timers come from stored times, not memory
    await restarted.tick(T0 + 9 * MIN)
    assert (await restarted.incident(incident.id)).escalation_level == 1
    await restarted.tick(T0 + 10 * MIN)
    again = await restarted.incident(incident.id)
    assert (again.escalation_level, again.team_id) == (2, "ecc-duty")
    assert [e.kind for e in again.timeline].count(TimelineKind.ESCALATED) == 2
    assert {r.team_id for r in await rows(sessions)} == {
        "drainage-crew",
        "flood-control",
        "ecc-duty",
    }


async def test_acknowledgement_stops_escalation_and_repeats(sessions):
    svc = service(sessions)
    await svc.handle([flood(1)], T0)
    [incident] = await svc.incidents()
    repeat = await svc.tick(T0 + 2 * MIN)  # red repeats every 2 minutes until acknowledged
    assert repeat.notified == (f"{incident.id}:repeat:2:drainage-crew",)
    await svc.acknowledge(incident.id, "crew-lead", T0 + 3 * MIN)
    assert (await svc.tick(T0 + 60 * MIN)).notified == ()
    stored = await svc.incident(incident.id)
    assert stored.state is IncidentState.ACKNOWLEDGED and stored.escalation_level == 0


async def test_storm_control_folds_into_a_digest(sessions):
    svc = service(sessions, storm=StormControl(max_per_window=2, window_ms=MIN))
    districts = ["a", "b", "c", "d", "e"]
    out = await svc.handle([gas(n, T0, district=d) for n, d in enumerate(districts)], T0)
    assert len(out.notified) == 2 and len(out.folded) == 3
    assert len(await svc.incidents()) == 5
    assert (await svc.tick(T0 + 30_000)).notified == ()  # the window is still full
    digest = await svc.tick(T0 + MIN + 1)
    [key] = digest.notified
    [row] = await rows(sessions, key=key)
    body = json.loads(row.body)
    assert body["event"] == "digest" and body["count"] == 3 and len(body["incident_ids"]) == 3
    folded = await rows(sessions, status="folded")
    assert len(folded) == 3 and {r.digest_key for r in folded} == {key}  # kept for the record
    later = await svc.tick(T0 + 3 * MIN)
    assert not [k for k in later.notified if k.startswith("digest:")]  # one digest only


async def test_incident_actions_are_on_the_timeline_and_audited(sessions):
    svc = service(sessions)
    await svc.handle([gas(1)], T0)
    [incident] = await svc.incidents()
    with pytest.raises(TransitionError):
        await svc.transition(incident.id, IncidentState.ON_SCENE, "crew", T0 + 1)
    await svc.note(incident.id, "ops", T0 + 1, "caller reports smell of gas", 500)
    moved = await svc.reassign(incident.id, "fire-station", "ops", T0 + 2, "closer")
    assert (moved.state, moved.team_id, moved.handler_id) == (
        IncidentState.DISPATCHED,
        "fire-station",
        "fire-rescue",
    )
    for state in (
        IncidentState.ACKNOWLEDGED,
        IncidentState.EN_ROUTE,
        IncidentState.ON_SCENE,
        IncidentState.RESOLVED,
    ):
        await svc.transition(incident.id, state, "crew-7", T0 + 10, "ok")
    with pytest.raises(TransitionError, match="alerts still active"):
        await svc.transition(incident.id, IncidentState.CLOSED, "crew-7", T0 + 11)
    await svc.handle([gas(1, T0 + 20, DetectionState.CLEARED)], T0 + 20)  # auto-closes
    final = await svc.incident(incident.id)
    assert final.state is IncidentState.CLOSED and await svc.incidents() == []
    actors = [(e.kind.value, e.actor) for e in final.timeline]
    assert ("note", "ops") in actors and ("reassigned", "ops") in actors
    assert ("on_scene", "crew-7") in actors and actors[-1] == ("closed", "system")
    assert {r.team_id for r in await rows(sessions)} == {"gas-emergency", "fire-station"}
    async with sessions() as session:
        audit = (await session.scalars(select(AuditRow).order_by(AuditRow.id))).all()
    assert [a.action for a in audit] == [
        "note",
        "reassign",
        "acknowledged",
        "en_route",
        "on_scene",
        "resolved",
    ]
    with pytest.raises(UnknownIncidentError):
        await svc.acknowledge("in-nope", "ops", T0)


async def test_cancel_tells_the_team(sessions):
    svc = service(sessions)
    await svc.handle([gas(1)], T0)
    [incident] = await svc.incidents()
    await svc.cancel(incident.id, "ops", T0 + 5, "false alarm: calibration gas")
    assert [r.event for r in await rows(sessions)] == ["dispatched", "cancelled"]
    assert (await svc.incident(incident.id)).state is IncidentState.CANCELLED


async def test_alert_acknowledge_and_close(sessions):
    svc = service(sessions)
    await svc.handle([gas(1)], T0)
    [alert] = svc.open_alerts()
    assert (await svc.acknowledge_alert(alert.id, "ops", T0 + 1)).state is AlertState.ACKNOWLEDGED
    closed = await svc.close_alert(alert.id, "ops", T0 + 2)
    assert closed.state is AlertState.CLOSED and svc.open_alerts() == []
    assert service(sessions).open_alerts() == []  # nothing loaded yet
    restarted = service(sessions)
    await restarted.restore()
    assert restarted.open_alerts() == []
    [incident] = await restarted.incidents()
    assert incident.open_alert_ids == ()  # the incident followed its alert


async def test_silenced_alerts_are_recorded_but_not_dispatched(sessions):
    svc = service(sessions)
    window = Silence(
        "s-1", (Matcher(Field.DEVICE, "gas-1"),), T0, T0 + 60 * MIN, "ops", "sensor calibration"
    )
    await svc.create_silence(window, T0)
    out = await svc.handle([gas(1)], T0 + 1)
    assert out.transitions[0].suppressed_by == "silence:s-1" and out.notified == ()
    assert len(svc.open_alerts()) == 1 and await svc.incidents() == []
    assert await service(sessions).silences() == [window]
    await svc.expire_silence("s-1", "ops", T0 + 2)
    assert await svc.silences() == []
    [stored] = await svc.silences(include_expired=True)
    assert stored.ends_ms == T0 + 2
    await svc.handle([gas(2, T0 + 3)], T0 + 3)
    assert len(await svc.incidents()) == 1


async def test_report_reads_incidents_from_sql(sessions):
    svc = service(sessions)
    await svc.handle([gas(1)], T0)
    await svc.handle([flood(1, T0 + 1)], T0 + 1)
    [gas_incident, _flood] = await svc.incidents()
    await svc.acknowledge(gas_incident.id, "crew", T0 + 2 * MIN)
    await svc.tick(T0 + 6 * MIN)  # flood: red deadline missed → escalated
    rows_ = {r.key: r for r in await svc.report(T0, T0 + 60 * MIN, "team")}
    assert set(rows_) == {"gas-emergency", "flood-control"}
    assert rows_["gas-emergency"].mtta_ms == 2 * MIN and rows_["gas-emergency"].sla_breaches == 0
    assert rows_["flood-control"].escalations == 1 and rows_["flood-control"].sla_breaches == 1


ROUTING = """
version: 1
handlers:
  - id: gas-company
    name: Gas company
    teams:
      - id: gas-emergency
        name: Gas emergency repair team
        channels:
          - {{type: webhook, url: "{url}", secret_env: GAS_HOOK_SECRET, allow_http: true}}
          - {{type: mqtt}}
policies: [{{id: standard, ack_deadline_s: {{red: 300}}}}]
routes: [{{match: {{}}, handler: gas-company, team: gas-emergency, policy: standard}}]
"""


async def test_end_to_end_signed_webhook_and_mqtt_dispatch(
    sessions, receiver, mosquitto, topic_prefix
):
    receiver.fail_first = 3
    svc = service(sessions, parse_routing(ROUTING.format(url=receiver.url)))
    await svc.handle([gas(1)], T0)
    client, received = subscribe(mosquitto.host, mosquitto.port, f"{topic_prefix}dispatch/#")
    mqtt = MqttChannel(mosquitto.host, mosquitto.port, prefix=topic_prefix)
    webhook = WebhookChannel(secrets={"GAS_HOOK_SECRET": "k"})
    await mqtt.start()
    stop = asyncio.Event()
    retry = RetryPolicy(base_ms=30, max_delay_ms=200)
    task = asyncio.create_task(
        Dispatcher(sessions, {"webhook": webhook, "mqtt": mqtt}, retry=retry, poll_s=0.02).run(stop)
    )
    try:
        topic, _qos, payload = await asyncio.to_thread(received.get, timeout=30)

        async def delivered() -> bool:
            # the receiver confirmed the webhook; only the broker took the MQTT message
            sent = {"webhook": "delivered", "mqtt": "published"}
            return {r.channel: r.status for r in await rows(sessions)} == sent

        await eventually(delivered, "webhook delivered and MQTT published", interval_s=0.02)
    finally:
        stop.set()
        await task
        await mqtt.aclose()
        await webhook.aclose()
        client.loop_stop()
        client.disconnect()
    [incident] = await svc.incidents()
    key = f"{incident.id}:dispatched:1:gas-emergency"
    assert topic == f"{topic_prefix}dispatch/gas-emergency" and json.loads(payload)["key"] == key
    assert len(receiver.calls) == 4 and list(receiver.effective) == [key]
    assert all(verify("k", c.body, c.headers) for c in receiver.calls)
    notified = [
        e.detail
        for e in (await svc.incident(incident.id)).timeline
        if e.kind is TimelineKind.NOTIFIED
    ]
    assert sum("webhook delivered" in d for d in notified) == 1 and len(notified) == 5
    assert sum("mqtt published" in d for d in notified) == 1


async def test_a_reload_that_removes_an_open_incidents_policy_keeps_it_escalating(sessions):
    """The flood policy renamed while a flood incident is open: the tick follows the policy of
    the route covering the incident now, instead of failing on the missing one."""
    svc = service(sessions)
    await svc.handle([flood(1)], T0)
    [incident] = await svc.incidents()
    text = resources.files("alerts").joinpath("data/routing.yaml").read_text()
    renamed = text.replace("- id: flood\n", "- id: flood-v2\n").replace(
        "policy: flood\n", "policy: flood-v2\n")
    assert renamed != text
    reloaded = service(sessions, parse_routing(renamed))
    out = await reloaded.tick(T0 + 5 * MIN)  # red: 5 minutes to acknowledge
    assert [tuple(k.split(":")[i] for i in (0, 1, 3)) for k in out.notified] == [
        (incident.id, "escalated", "flood-control")]


async def test_an_open_incident_of_a_team_a_reload_removed_can_still_be_cancelled(sessions):
    """The gas team renamed while its incident is open: telling the gone team nothing, the
    cancel goes through instead of failing on the missing team."""
    svc = service(sessions)
    await svc.handle([gas(1)], T0)
    [incident] = await svc.incidents()
    assert incident.team_id == "gas-emergency"
    text = resources.files("alerts").joinpath("data/routing.yaml").read_text()
    reloaded = service(sessions, parse_routing(text.replace("gas-emergency", "gas-crew")))
    cancelled = await reloaded.cancel(incident.id, "ops", T0 + 5, "false alarm")
    assert cancelled.state is IncidentState.CANCELLED
