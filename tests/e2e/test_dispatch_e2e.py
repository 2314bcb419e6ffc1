"""Gas readings over MQTT → the running platform → one incident → the gas company's team.

Real Mosquitto and influxd (fixtures), the platform in-process, SQLite, a real HTTP receiver
(`tests.alerts.conftest.receiver`) and a real MQTT subscriber on the team's dispatch topic.
The routing file is the shipped one, rewritten by the test so that the gas team's webhook
points at the receiver (its HMAC secret named by environment variable) and the escalation
deadline is short; retries back off from 0.1 s so everything happens in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import time
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from sqlalchemy import select

from alerts.channels.webhook import redacted_url, verify
from alerts.model import Incident, IncidentState
from alerts.sql import outbox
from alerts.sql.tables import TimelineRow
from devices.registry import Device
from devices.store import DeviceStore
from ingest.config import MqttConfig
from tests.alerts.channels.test_channels import subscribe
from tests.alerts.conftest import Receiver, receiver  # noqa: F401  (the HTTP receiver fixture)
from tests.support.platform_run import running
from tests.support.polling import eventually
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.platform import Platform
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(180)
SECRET_ENV = "URBANWATCH_E2E_GAS_WEBHOOK_SECRET"
SECRET = "e2e-" + uuid.uuid4().hex
GAS = [Device(f"gas-e2e-{n}", "gas", "dongcheng", 39.91 + n / 1000, 116.41, "dongcheng-g1")
       for n in (1, 2)]  # fmt: skip


def write_routing(path: Path, webhook_url: str, red_ack_deadline_s: int) -> Path:
    """The shipped routing with the gas team's webhook and a test-sized escalation deadline."""
    config = yaml.safe_load(resources.files("alerts").joinpath("data/routing.yaml").read_text())
    teams = {t["id"]: t for h in config["handlers"] for t in h["teams"]}
    teams["gas-emergency"]["channels"] = [
        {"type": "webhook", "url": webhook_url, "secret_env": SECRET_ENV, "allow_http": True},
        {"type": "mqtt"}]
    standard = next(p for p in config["policies"] if p["id"] == "standard")
    standard["ack_deadline_s"] = {"red": red_ack_deadline_s}
    del standard["repeat_s"]  # only the dispatch and the escalation are sent
    assert standard["levels"] == ["ecc-duty"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def register(settings: Settings) -> None:
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        await DeviceStore(create_session_factory(engine)).add(GAS)
    finally:
        await engine.dispose()


def publish_lel(settings: Settings, readings: list[tuple[Device, float]]) -> None:
    """Publish one compact-JSON reading per (device, % LEL) at QoS 1, each PUBACKed."""
    config = MqttConfig.from_url(settings.mqtt.url or "", client_id=f"e2e-{uuid.uuid4().hex[:8]}")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id)
    if config.username:
        client.username_pw_set(config.username, config.password)
    client.connect(config.host, config.port)
    client.loop_start()
    try:
        for device, lel in readings:
            topic = f"{settings.mqtt.topic_prefix}city/{device.district}/{device.id}/data"
            body = json.dumps({"ts": time.time_ns() // 1_000_000, "m": {"lel_pct": lel}})
            client.publish(topic, body, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@contextlib.asynccontextmanager
async def platform_for(
    settings: Settings, tmp_path: Path, webhook_url: str, red_ack_deadline_s: int,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Platform]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    settings.alerts.routing_path = write_routing(
        tmp_path / "routing.yaml", webhook_url, red_ack_deadline_s)
    settings.alerts.tick_s = settings.rules.tick_s = 0.2
    settings.alerts.retry_base_s, settings.alerts.retry_max_s = 0.1, 0.4
    await register(settings)
    async with running(settings) as platform:
        yield platform


def dispatch_topic(settings: Settings, team: str) -> tuple[mqtt.Client, queue.Queue]:
    config = MqttConfig.from_url(settings.mqtt.url or "", client_id="unused")
    return subscribe(config.host, config.port, f"{settings.mqtt.topic_prefix}dispatch/{team}")


async def a_red_gas_leak(platform: Platform, settings: Settings) -> Incident:
    """Both detectors cross 50 % LEL; returns the one incident once both readings are judged."""
    assert platform.ingestor is not None and platform.alerting is not None
    await asyncio.to_thread(publish_lel, settings, [(GAS[0], 3.0), (GAS[1], 2.0)])
    await asyncio.to_thread(publish_lel, settings, [(GAS[0], 64.0), (GAS[1], 58.0)])
    counters = platform.ingestor.counters
    await eventually(lambda: counters.stored_readings >= 4, "4 readings stored and judged")
    [incident] = await platform.alerting.service.incidents(open_only=False)
    return incident


async def next_message(received: queue.Queue, timeout_s: float = 30.0) -> tuple[str, int, dict]:
    topic, qos, payload = await asyncio.to_thread(received.get, timeout=timeout_s)
    return topic, qos, json.loads(payload)


async def test_red_gas_readings_reach_the_gas_team_signed_and_on_mqtt(
    settings: Settings, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    client, received = dispatch_topic(settings, "gas-emergency")
    try:
        async with platform_for(settings, tmp_path, receiver.url, 300, monkeypatch) as platform:
            incident = await a_red_gas_leak(platform, settings)
            topic, qos, message = await next_message(received)
            await eventually(lambda: bool(receiver.effective), "a webhook delivery")
    finally:
        client.loop_stop()
        client.disconnect()
    assert (incident.category.value, incident.severity.name) == ("safety", "RED")
    assert (incident.handler_id, incident.team_id) == ("gas-company", "gas-emergency")
    assert incident.state is IncidentState.DISPATCHED
    assert sorted(incident.devices) == [d.id for d in GAS]
    [call] = receiver.calls
    assert call.status == 200 and call.path == "/hook"
    assert verify(SECRET, call.body, call.headers)
    assert not verify("another secret", call.body, call.headers)
    body = json.loads(call.body)
    assert body["event"] == "dispatched" and body["incident"]["id"] == incident.id
    assert call.headers["idempotency-key"] == body["key"]
    assert topic == f"{settings.mqtt.topic_prefix}dispatch/gas-emergency" and qos == 1
    assert message["key"] == body["key"] and message["incident"]["team_id"] == "gas-emergency"


async def test_a_failing_receiver_gets_exactly_one_effective_delivery(
    settings: Settings, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    receiver.fail_first = 3
    async with platform_for(settings, tmp_path, receiver.url, 300, monkeypatch) as platform:
        incident = await a_red_gas_leak(platform, settings)
        await eventually(lambda: bool(receiver.effective), "a webhook delivery")

        async def delivered() -> bool:
            async with platform.sessions() as session:
                rows = await outbox.rows(session, channel="webhook")
            return [r.status for r in rows] == ["delivered"]

        await eventually(delivered, "the outbox row marked delivered")
        async with platform.sessions() as session:
            [row] = await outbox.rows(session, channel="webhook")
            timeline = (await session.scalars(
                select(TimelineRow.detail).where(TimelineRow.incident_id == incident.id)
                .where(TimelineRow.actor == "dispatcher").order_by(TimelineRow.id))).all()
    assert [c.status for c in receiver.calls] == [500, 500, 500, 200]
    assert {c.headers["idempotency-key"] for c in receiver.calls} == {row.key}
    assert list(receiver.effective) == [row.key]
    assert all(verify(SECRET, c.body, c.headers) for c in receiver.calls)
    assert (row.status, row.attempts) == ("delivered", 4)
    webhook = [t for t in timeline if t.startswith("webhook")]
    failed = f"failed: HTTP 500 from {redacted_url(receiver.url)}; retrying"
    assert [t.split(" [")[0] for t in webhook] == [
        *(f"webhook attempt {n} {failed}" for n in (1, 2, 3)), "webhook delivered (attempt 4)"]


async def test_no_acknowledgement_escalates_to_the_next_level(
    settings: Settings, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    client, received = dispatch_topic(settings, "ecc-duty")
    try:
        async with platform_for(settings, tmp_path, receiver.url, 1, monkeypatch) as platform:
            incident = await a_red_gas_leak(platform, settings)
            topic, qos, message = await next_message(received)
            assert platform.alerting is not None
            escalated = await platform.alerting.service.incident(incident.id)
            async with platform.sessions() as session:
                t = TimelineRow
                columns = (t.kind, t.actor, t.detail, t.ts_ms)
                timeline = (await session.execute(
                    select(*columns).where(TimelineRow.incident_id == incident.id)
                    .order_by(TimelineRow.id))).all()
                [ecc_row] = await outbox.rows(session, team_id="ecc-duty")
    finally:
        client.loop_stop()
        client.disconnect()
    assert incident.team_id == "gas-emergency"
    assert (escalated.team_id, escalated.escalation_level) == ("ecc-duty", 1)
    assert escalated.state is IncidentState.DISPATCHED
    kinds = [t.kind for t in timeline]
    assert kinds.index("dispatched") < kinds.index("escalated")
    [dispatched] = [t for t in timeline if t.kind == "dispatched"]
    [escalation] = [t for t in timeline if t.kind == "escalated"]
    assert escalation.actor == "system" and "ecc-duty" in escalation.detail
    assert escalation.ts_ms - dispatched.ts_ms >= 1000  # not before the 1 s deadline
    assert topic == f"{settings.mqtt.topic_prefix}dispatch/ecc-duty" and qos == 1
    assert message["event"] == "escalated" and message["incident"]["id"] == incident.id
    assert (ecc_row.event, ecc_row.channel, ecc_row.key) == ("escalated", "mqtt", message["key"])
