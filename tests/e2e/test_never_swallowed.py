"""Silences and maintenance hide warnings; they never swallow them (the running platform).
The alerts of a device that leaves service close, with the reason on the incident timeline.

Real Mosquitto and influxd (fixtures), the platform in-process over SQLite, the shipped rule
pack and routing (see `tests.e2e.test_dispatch_e2e`), a real MQTT subscriber on the team's
dispatch topic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.decisions.silences import Field, Matcher, Silence
from alerts.model import Alert, AlertState, IncidentState, TimelineKind
from alerts.sql.repository import AlertQuery
from devices.clock import now_ms
from devices.errors import RejectReason
from devices.provisioning import Provisioning
from devices.registry import DeviceStatus
from tests.alerts.conftest import Receiver, receiver  # noqa: F401  (the HTTP receiver fixture)
from tests.e2e.test_dispatch_e2e import GAS, dispatch_topic, next_message, platform_for, publish_lel
from tests.support.polling import eventually
from urbanwatch.alerting import LEFT_SERVICE
from urbanwatch.platform import Platform
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(180)
SILENCE_S = 4  # long enough for a reading to be judged inside it, on a loaded machine too
STALE_S = 3
QUIET_RULES = f"""
rules:
  - id: device-offline-safety
    category: device
    match: {{device_ids: [{GAS[0].id}], metric: lel_pct}}
    when: stale({STALE_S}s)
    severity: orange
  - id: gas-high
    category: safety
    match: {{device_ids: [{GAS[0].id}], metric: lel_pct}}
    when: value > 50
    severity: red
"""


Quiet = Callable[[], contextlib.AbstractAsyncContextManager[Platform]]


@pytest.fixture
def quiet(settings: Settings, tmp_path: Path, receiver: Receiver,  # noqa: F811
          monkeypatch: pytest.MonkeyPatch) -> Quiet:
    """The platform with `QUIET_RULES`, to be started in the test."""
    settings.rules.path = tmp_path / "rules.yaml"
    settings.rules.path.write_text(QUIET_RULES)
    return lambda: platform_for(settings, tmp_path, receiver.url, 300, monkeypatch)


async def set_gas_status(platform: Platform, status: DeviceStatus) -> int:
    """As the API does (the change reaches ingest and the engine right after it is written);
    when the engine has seen it."""
    devices = Provisioning(platform.sessions, platform.catalogue, platform._devices_changed)
    await devices.set_status(GAS[0].id, status)
    judge = platform.judge
    assert judge is not None
    await eventually(lambda: judge.engine.registry.get(GAS[0].id).status is status,
                     f"the engine to see {GAS[0].id} {status.value}")  # fmt: skip
    return now_ms()


async def test_an_ongoing_alert_is_dispatched_when_its_silence_ends(
    settings: Settings, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    client, received = dispatch_topic(settings, "gas-emergency")
    try:
        async with platform_for(settings, tmp_path, receiver.url, 300, monkeypatch) as platform:
            assert platform.alerting is not None and platform.ingestor is not None
            service = platform.alerting.service
            start = now_ms()
            silence = await service.create_silence(Silence(
                "valve-works", (Matcher(Field.DEVICE, GAS[0].id),), start,
                start + SILENCE_S * 1000, "olga", "valve replacement"), start)  # fmt: skip
            await asyncio.to_thread(publish_lel, settings, [(GAS[0], 3.0)])
            await asyncio.to_thread(publish_lel, settings, [(GAS[0], 64.0)])
            counters = platform.ingestor.counters
            await eventually(lambda: counters.stored_readings >= 2, "2 readings judged")
            [alert] = (await service.find_alerts(AlertQuery()))[0]
            assert alert.state is AlertState.FIRING and alert.started_ms < silence.ends_ms
            assert not alert.notified
            _, _, message = await next_message(received)
            [incident] = await service.incidents()
            [alert] = (await service.find_alerts(AlertQuery()))[0]
    finally:
        client.loop_stop()
        client.disconnect()
    assert silence.ends_ms is not None and incident.opened_ms >= silence.ends_ms
    assert message["event"] == "dispatched" and message["incident"]["id"] == incident.id
    assert incident.devices == (GAS[0].id,) and incident.team_id == "gas-emergency"
    assert alert.state is AlertState.FIRING and alert.notified


async def test_a_device_in_maintenance_stays_quiet_and_is_judged_afresh_on_return(
    settings: Settings, quiet: Quiet
) -> None:
    async with quiet() as platform:
        assert platform.alerting and platform.ingestor and platform.judge
        service, counters = platform.alerting.service, platform.ingestor.counters
        judge = platform.judge

        async def ticked_until(ms: int) -> None:
            ticks = judge.ticks
            await eventually(lambda: now_ms() > ms and judge.ticks > ticks + 1, "ticks")

        async def alerts() -> list:
            return (await service.find_alerts(AlertQuery()))[0]

        await asyncio.to_thread(publish_lel, settings, [(GAS[0], 3.0)])
        await eventually(lambda: counters.stored_readings >= 1, "a reading judged")
        away_ms = await set_gas_status(platform, DeviceStatus.MAINTENANCE)
        await asyncio.to_thread(publish_lel, settings, [(GAS[0], 64.0)])  # a red value
        await eventually(lambda: counters.rejected[RejectReason.DEVICE_NOT_ACTIVE] >= 1,
                         "the red reading refused")  # fmt: skip
        await ticked_until(away_ms + 2 * STALE_S * 1000)  # silent well past its stale window
        assert await alerts() == []
        back_ms = await set_gas_status(platform, DeviceStatus.ACTIVE)

        async def offline() -> bool:
            return [a.rule_id for a in await alerts()] == ["device-offline-safety"]

        await eventually(offline, "the offline alert, counted from the return")
        [down] = await alerts()
        await asyncio.to_thread(publish_lel, settings, [(GAS[0], 64.0)])

        async def red() -> bool:
            return any(a.rule_id == "gas-high" and a.is_active for a in await alerts())

        await eventually(red, "the red value to raise")
    assert down.started_ms >= back_ms + STALE_S * 1000 - 1000  # a tick may see it early by < 1 s
    assert down.started_ms > away_ms + 2 * STALE_S * 1000


async def test_the_alerts_of_a_device_put_into_maintenance_close_and_return_with_it(
    settings: Settings, quiet: Quiet
) -> None:
    async with quiet() as platform:
        assert platform.alerting
        service = platform.alerting.service

        async def red() -> list[Alert]:
            found = (await service.find_alerts(AlertQuery()))[0]
            return [a for a in found if a.rule_id == "gas-high"]

        await asyncio.to_thread(publish_lel, settings, [(GAS[0], 64.0)])

        async def raised() -> bool:
            return bool(await red()) and bool(await service.incidents())

        await eventually(raised, "the red reading's alert and incident")
        [alert] = await red()
        [incident] = await service.incidents()
        for step in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):  # the team is done...
            await service.transition(incident.id, step, "gas-crew", now_ms())
        assert (await service.incident(incident.id)).state is IncidentState.RESOLVED  # ...alert on

        await set_gas_status(platform, DeviceStatus.MAINTENANCE)
        await eventually(lambda: service.open_alerts() == [], "the alert closed")
        [closed] = await red()
        incident = await service.incident(incident.id)
        cleared = [e.detail for e in incident.timeline if e.kind is TimelineKind.ALERT_CLEARED]
        assert closed.id == alert.id and closed.state is AlertState.CLOSED
        assert cleared == [f"{alert.id} ({LEFT_SERVICE[DeviceStatus.MAINTENANCE]})"]
        assert incident.state is IncidentState.CLOSED  # resolved, and no alert left open

        await set_gas_status(platform, DeviceStatus.ACTIVE)
        await asyncio.to_thread(publish_lel, settings, [(GAS[0], 66.0)])

        async def raised_again() -> bool:
            return any(a.is_active for a in await red())

        await eventually(raised_again, "a new alert for the red value after the return")
        [again] = [a for a in await red() if a.is_active]
        [reopened] = await service.incidents()
    assert again.id != alert.id and reopened.id != incident.id
    assert reopened.team_id == "gas-emergency"
