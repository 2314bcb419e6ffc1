"""Partitioned workers share one broker, one InfluxDB and one PostgreSQL; one is killed.

Two real `urbanwatch serve --partition k/2` processes, each owning one district of gas
detectors, against the session's Mosquitto and influxd and a fresh PostgreSQL database. The
readings of both districts cross the red threshold at different points of the stream; the
worker owning the first district is killed (SIGKILL) while the stream is being published and
started again. Then every reading is stored once (the count in InfluxDB), every alert was
raised once (one alert, and one firing transition, per device), and every incident was
dispatched once (one dispatch per incident in the outbox, one effective webhook delivery and
one MQTT message per dispatch). The live stream of the other worker shows the alerts the
killed worker raised. And two workers of the same partition are a hot standby pair: the
second takes over when the first is killed, with the same guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from alerts.sql import outbox
from alerts.sql.tables import AlertChangeRow, AlertRow, IncidentRow
from api.security.principal import Role
from api.security.users import UserStore
from devices.clock import now_ms
from devices.registry import Device
from devices.store import DeviceStore
from ingest.config import MqttConfig
from ingest.timeseries.client import InfluxClient
from tests.alerts.conftest import Receiver, receiver  # noqa: F401  (the HTTP receiver fixture)
from tests.e2e.test_dispatch_e2e import SECRET, SECRET_ENV, dispatch_topic, write_routing
from tests.support.platform_process import PlatformProcess, sample, serving
from tests.support.polling import eventually
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.partition import Partition
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(300)
KILLED, SURVIVOR = "D04", "D01"  # owned by partitions 1/2 and 2/2
DEVICES = [Device(f"gas-{d}-{n}", "gas", d, 39.9 + n / 1000, 116.4, f"{d}-g1")
           for d in (KILLED, SURVIVOR) for n in (1, 2)]  # fmt: skip
PER_DEVICE = 150
STEP_MS = 200
CROSSES_AT = {  # reading index from which each device reads above 50 % LEL
    f"gas-{KILLED}-1": 20,  # before the kill: must not be raised again after the restart
    f"gas-{KILLED}-2": 130,  # after the restart: joins the district's open incident
    f"gas-{SURVIVOR}-1": 70,  # while the other worker is down
    f"gas-{SURVIVOR}-2": 75,
}
PHASES = (0, 50, 110, PER_DEVICE)  # before the kill | killed meanwhile | after the restart
RULES = """
rules:
  - id: gas-high
    category: safety
    match: {device_type: gas, metric: lel_pct}
    when: value > 50
    severity: red
"""
ADMIN, PASSWORD = "admin", "pw-" + uuid.uuid4().hex


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_workers_one_killed_store_raise_and_dispatch_everything_once(
    settings: Settings, db_url: str, influx_db: InfluxClient, tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    assert Partition.parse("1/2").owns(KILLED) and Partition.parse("2/2").owns(SURVIVOR)
    workers = _workers(settings, db_url, tmp_path, receiver.url, ["1/2", "2/2"])
    sessions_engine = create_engine(db_url)
    sessions = create_session_factory(sessions_engine)
    await migrate(db_url)
    await DeviceStore(sessions).add(DEVICES)
    await UserStore(sessions).add(ADMIN, Role.admin, (), PASSWORD, now_ms())
    client, dispatched = dispatch_topic(settings, "gas-emergency")
    t0_ms = now_ms() - 10 * 60_000
    try:
        async with serving(workers[0]) as killed, serving(workers[1]) as survivor, \
                _live(survivor) as live:
            await asyncio.to_thread(_publish, settings, t0_ms, *PHASES[0:2])
            await eventually(lambda: _raised_on(live, f"gas-{KILLED}-1"),
                             "the killed worker's first alert on the other worker's stream")
            halfway = threading.Event()
            publishing = asyncio.create_task(
                asyncio.to_thread(_publish, settings, t0_ms, *PHASES[1:3], halfway))
            await asyncio.to_thread(halfway.wait, 30)
            killed.kill()  # mid-stream: the broker keeps its partition's messages
            await publishing
            killed.start()
            await killed.wait_ready()
            await asyncio.to_thread(_publish, settings, t0_ms, *PHASES[2:4])

            async def all_stored() -> bool:
                return await influx_db.count_values() >= len(DEVICES) * PER_DEVICE

            await eventually(all_stored, "every reading stored", timeout_s=120)
            await eventually(lambda: _has_alerts(sessions, len(DEVICES)),
                             "an alert for every device", timeout_s=60)
            await eventually(lambda: _dispatched_to_receiver(sessions, receiver),
                             "every incident's dispatch delivered", timeout_s=60)
            for device in DEVICES:
                await eventually(lambda d=device.id: _raised_on(live, d),
                                 f"{device.id}'s alert on the survivor's stream")
        assert await influx_db.count_values() == len(DEVICES) * PER_DEVICE
        await _each_alert_raised_once(sessions)
        keys = await _each_incident_dispatched_once(sessions)
        assert set(receiver.effective) == keys["webhook"]
        await eventually(lambda: dispatched.qsize() >= len(keys["mqtt"]), "MQTT dispatches")
        mqtt_keys = [json.loads(m[2])["key"] for m in list(dispatched.queue)]
        assert sorted(set(mqtt_keys)) == sorted(keys["mqtt"])  # a resend keeps its key
    finally:
        client.loop_stop()
        client.disconnect()
        await sessions_engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_standby_takes_over_its_killed_leaders_partition(
    settings: Settings, db_url: str, influx_db: InfluxClient, tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    """Two workers of one partition: the second stands by (serving the API, ingesting nothing)
    until the leader is killed, then resumes its MQTT session; nothing lost, nothing twice."""
    leader, standby = _workers(settings, db_url, tmp_path, receiver.url, ["1/1", "1/1"])
    sessions_engine = create_engine(db_url)
    sessions = create_session_factory(sessions_engine)
    await migrate(db_url)
    await DeviceStore(sessions).add(DEVICES)
    t0_ms = now_ms() - 10 * 60_000
    try:
        leader.start()  # killed below: it does not stop cleanly
        try:
            await leader.wait_ready()
            async with serving(standby):
                await asyncio.to_thread(_publish, settings, t0_ms, *PHASES[0:2])
                first = len(DEVICES) * PHASES[1]

                async def leader_stored_phase_one() -> bool:
                    return await _stored(leader) == first

                await eventually(leader_stored_phase_one, "the leader storing the first phase")
                assert await _stored(standby) == 0  # standing by: it ingests nothing
                halfway = threading.Event()
                publishing = asyncio.create_task(
                    asyncio.to_thread(_publish, settings, t0_ms, *PHASES[1:3], halfway))
                await asyncio.to_thread(halfway.wait, 30)
                leader.kill()
                await publishing
                await asyncio.to_thread(_publish, settings, t0_ms, *PHASES[2:4])

                async def all_stored() -> bool:
                    return await influx_db.count_values() >= len(DEVICES) * PER_DEVICE

                await eventually(all_stored, "every reading stored", timeout_s=120)
                assert await _stored(standby) > 0  # the standby took over
                await eventually(lambda: _has_alerts(sessions, len(DEVICES)),
                                 "an alert for every device", timeout_s=60)
                await eventually(lambda: _dispatched_to_receiver(sessions, receiver),
                                 "every incident's dispatch delivered", timeout_s=60)
        finally:
            leader.stop()
        assert await influx_db.count_values() == len(DEVICES) * PER_DEVICE
        await _each_alert_raised_once(sessions)
        keys = await _each_incident_dispatched_once(sessions)
        assert set(receiver.effective) == keys["webhook"]
    finally:
        await sessions_engine.dispose()


async def _stored(worker: PlatformProcess) -> float:
    return sample(await worker.metrics(), "urbanwatch_ingest_stored_readings_total")


def _workers(settings: Settings, db_url: str, tmp_path: Path, hook: str,
             partitions: list[str]) -> list[PlatformProcess]:
    """Workers of `partitions`: own state folders and API ports, the same services and files."""
    routing = write_routing(tmp_path / "routing.yaml", hook, 3600)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    workers = []
    for k, partition in enumerate(partitions, start=1):
        worker_settings = settings.model_copy(update={"state_dir": tmp_path / f"worker{k}",
                                                      "db": settings.db.model_copy(
                                                          update={"url": db_url})})
        worker = PlatformProcess(worker_settings, tmp_path / f"worker{k}.log",
                                 ["--partition", partition])
        worker.env.update({
            SECRET_ENV: SECRET, "URBANWATCH_RULES__PATH": str(rules),
            "URBANWATCH_ALERTS__ROUTING_PATH": str(routing),
            "URBANWATCH_ALERTS__TICK_S": "0.2", "URBANWATCH_RULES__TICK_S": "0.2",
            "URBANWATCH_ALERTS__RETRY_BASE_S": "0.1", "URBANWATCH_ALERTS__RETRY_MAX_S": "0.4",
        })
        workers.append(worker)
    return workers


def _publish(settings: Settings, t0_ms: int, start: int, end: int,
             halfway: threading.Event | None = None) -> None:
    """Readings `start` to `end` of every device at QoS 1, every one PUBACKed by the broker."""
    config = MqttConfig.from_url(settings.mqtt.url or "", client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id)
    client.connect(config.host, config.port)
    client.loop_start()
    try:
        for i in range(start, end):
            if halfway is not None and i == (start + end) // 2:
                halfway.set()
            for device in DEVICES:
                lel = 60.0 + i % 5 if i >= CROSSES_AT[device.id] else 2.0 + i % 3
                body = json.dumps({"ts": t0_ms + i * STEP_MS, "m": {"lel_pct": lel}})
                topic = f"{settings.mqtt.topic_prefix}city/{device.district}/{device.id}/data"
                client.publish(topic, body, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@contextlib.asynccontextmanager
async def _live(worker: PlatformProcess) -> AsyncIterator[list[dict]]:
    """The events of `worker`'s live stream (SSE), as they arrive, while the block runs."""
    events: list[dict] = []
    opened = asyncio.Event()

    async def read() -> None:
        async with httpx.AsyncClient(base_url=worker.api_url, timeout=30.0) as api:
            login = await api.post("/api/v1/auth/token",
                                   data={"username": ADMIN, "password": PASSWORD})
            login.raise_for_status()
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            async with api.stream("GET", "/api/v1/live/sse", headers=headers,
                                  timeout=httpx.Timeout(30.0, read=None)) as stream:
                stream.raise_for_status()
                opened.set()
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))

    task = asyncio.create_task(read())
    try:
        await eventually(lambda: opened.is_set() or task.done(), "the live stream open")
        if task.done():
            task.result()
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _raised_on(events: list[dict], device_id: str) -> bool:
    return any(e.get("type") == "alert" and e.get("subject") == device_id
               and e.get("state") == "firing" for e in events)


async def _has_alerts(sessions, n: int) -> bool:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AlertRow)) or 0) >= n


async def _dispatched_to_receiver(sessions, receiver: Receiver) -> bool:  # type: ignore[no-untyped-def]  # noqa: F811
    async with sessions() as session:
        rows = await outbox.rows(session, channel="webhook", event="dispatched")
    return len(rows) == 2 and {r.key for r in rows} <= set(receiver.effective)


async def _each_alert_raised_once(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        alerts = (await session.execute(select(AlertRow.rule_id, AlertRow.subject))).all()
        firing = (await session.execute(
            select(AlertRow.subject, func.count()).join(AlertChangeRow)
            .where(AlertChangeRow.to_state == "firing").group_by(AlertRow.subject))).all()
    assert sorted(alerts) == sorted(("gas-high", d.id) for d in DEVICES)
    assert dict(firing) == {d.id: 1 for d in DEVICES}


async def _each_incident_dispatched_once(sessions) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """One incident per district, each with one dispatch per channel; the keys by channel."""
    async with sessions() as session:
        incidents = (await session.execute(select(IncidentRow.id, IncidentRow.members))).all()
        rows = await outbox.rows(session, event="dispatched")
    by_district = {frozenset(m["district"] for m in members) for _, members in incidents}
    assert by_district == {frozenset({KILLED}), frozenset({SURVIVOR})}
    per_incident = sorted((r.incident_id, r.channel) for r in rows)
    assert per_incident == sorted((i, c) for i, _ in incidents for c in ("mqtt", "webhook"))
    return {c: {r.key for r in rows if r.channel == c} for c in ("mqtt", "webhook")}
