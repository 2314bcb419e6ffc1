"""A broken sensor is reported as broken, not as offline (the running platform).

Real Mosquitto and influxd (fixtures), the platform in-process over SQLite, the shipped routing
(see `tests.e2e.test_dispatch_e2e`) and the shipped rule pack with test-sized durations, a real
MQTT subscriber on the maintenance team's dispatch topic. A gas detector sends readings above
100 % LEL: each is dead-lettered and never stored, and together they raise one ``device``
alert, dispatched to field maintenance, that clears once the detector is back in range.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import pytest

from alerts.model import AlertState
from alerts.sql.repository import AlertQuery
from devices.clock import now_ms
from rules.detection import Category, Severity
from tests.alerts.conftest import Receiver, receiver  # noqa: F401  (the HTTP receiver fixture)
from tests.e2e.test_dispatch_e2e import GAS, dispatch_topic, next_message, platform_for, publish_lel
from tests.support.polling import eventually
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(180)
HOLD_S = 3
STALE_S = 6
FAULTS = 9  # bad readings, one a second: no in-range reading for well over STALE_S


def shortened_pack(path: Path) -> Path:
    """The shipped pack, with its fault hold and safety staleness shortened for a test."""
    text = resources.files("rules").joinpath("packs/default.yaml").read_text()
    assert text.count("out_of_range(15m)") == 2 and text.count("stale(5m)") == 1
    path.write_text(text.replace("out_of_range(15m)", f"out_of_range({HOLD_S}s)")
                    .replace("stale(5m)", f"stale({STALE_S}s)"))
    return path


async def test_out_of_range_readings_raise_one_device_alert_for_maintenance_and_it_clears(
    settings: Settings, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    settings.rules.path = shortened_pack(tmp_path / "rules.yaml")
    client, received = dispatch_topic(settings, "field-maintenance")
    gas = GAS[0]
    try:
        async with platform_for(settings, tmp_path, receiver.url, 300, monkeypatch) as platform:
            assert platform.alerting and platform.ingestor and platform.judge
            service, counters, judge = platform.alerting.service, platform.ingestor.counters, \
                platform.judge

            async def alerts() -> list:
                return (await service.find_alerts(AlertQuery()))[0]

            await asyncio.to_thread(publish_lel, settings, [(gas, 3.0)])
            await eventually(lambda: counters.stored_readings == 1, "the good reading judged")
            for _ in range(FAULTS):
                last_fault_ms = now_ms()  # the reading's ts is taken after this
                await asyncio.to_thread(publish_lel, settings, [(gas, 250.0)])
                await asyncio.sleep(1)  # the detector's report interval, test-sized
            await eventually(lambda: counters.readings_rejected["out_of_range"] == FAULTS,
                             "every bad reading refused")  # fmt: skip
            ticks = judge.ticks
            await eventually(lambda: judge.ticks > ticks + 1, "the engine to tick after them")
            raised = await alerts()
            _, _, message = await next_message(received)
            [incident] = await service.incidents()

            await asyncio.to_thread(publish_lel, settings, [(gas, 4.0)])  # back in range

            async def cleared() -> bool:
                return all(not a.is_active for a in await alerts())

            await eventually(cleared, "the fault alert to clear after the hold")
            [after] = [a for a in await alerts() if a.rule_id == "sensor-out-of-range-safety"]
    finally:
        client.loop_stop()
        client.disconnect()
    # one alert, not a storm, and not "offline": the detector was heard all along
    assert [(a.rule_id, a.category, a.severity, a.state, a.device_id, a.value) for a in raised] == [
        ("sensor-out-of-range-safety", Category.DEVICE, Severity.ORANGE, AlertState.FIRING,
         gas.id, 250.0)]
    assert counters.stored_readings == 2  # the bad readings were never stored
    assert message["event"] == "dispatched" and message["incident"]["id"] == incident.id
    assert incident.team_id == "field-maintenance" and incident.devices == (gas.id,)
    assert after.state is AlertState.CLEARED and after.cleared_ms is not None
    assert after.cleared_ms >= last_fault_ms + HOLD_S * 1000  # not before the hold
