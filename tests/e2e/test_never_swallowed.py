"""Silences and maintenance hide warnings; they never swallow them (the running platform).

Real Mosquitto and influxd (fixtures), the platform in-process over SQLite, the shipped rule
pack and routing (see `tests.e2e.test_dispatch_e2e`), a real MQTT subscriber on the team's
dispatch topic.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from alerts.decisions.silences import Field, Matcher, Silence
from alerts.model import AlertState
from alerts.sql.repository import AlertQuery
from devices.clock import now_ms
from tests.alerts.conftest import Receiver, receiver  # noqa: F401  (the HTTP receiver fixture)
from tests.e2e.test_dispatch_e2e import GAS, dispatch_topic, next_message, platform_for, publish_lel
from tests.support.polling import eventually
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(180)
SILENCE_S = 4  # long enough for a reading to be judged inside it, on a loaded machine too


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
