"""Starting the platform: it waits for InfluxDB when it is down, and keeps the city out of
full garbage collections once running."""

from __future__ import annotations

import asyncio
import gc

import pytest

from devices.registry import Device
from devices.store import DeviceStore
from tests.support.platform_run import running
from tests.support.polling import eventually
from urbanwatch.demo import import_city
from urbanwatch.platform import Platform
from urbanwatch.services.influxd import Influxd
from urbanwatch.settings import Settings


async def test_start_waits_for_influxdb(
    settings: Settings, influxd: Influxd, caplog: pytest.LogCaptureFixture
) -> None:
    settings.influx.database = "start_waits"
    influxd.stop()
    platform = Platform(settings, serve_api=False)
    opening = asyncio.create_task(platform.__aenter__())

    def retried() -> bool:
        if opening.done():
            opening.result()  # raises what made it give up
            pytest.fail("the platform opened with InfluxDB down")
        return sum("is not answering" in r.getMessage() for r in caplog.records) >= 2

    await eventually(retried, "a second attempt to reach InfluxDB")
    assert not opening.done()  # still waiting for InfluxDB, not failed
    await asyncio.to_thread(influxd.start)
    try:
        await asyncio.wait_for(opening, timeout=60)
        assert platform.influx is not None
        databases = await platform.influx.query("SHOW DATABASES")
        assert ["start_waits"] in databases[0]["values"]
        await platform.influx.query("DROP DATABASE start_waits")
    finally:
        await platform.__aexit__(None, None, None)


async def test_the_citys_registry_is_out_of_full_garbage_collections(settings: Settings) -> None:
    """A full collection walks every object it tracks with the GIL held: at 100,000 devices the
    registry made each one stall the platform for about half a second. Once running, neither
    the registry nor a copy of the stored devices (the registry refresh) is tracked."""
    await import_city(settings, n_devices=200, seed=3)
    async with running(settings) as platform:
        devices = list(platform.registry.devices.values())
        added = Device("wl-added", "water_level", devices[0].district, devices[0].lat,
                       devices[0].lon, devices[0].grid)
        await DeviceStore(platform.sessions).add([added])
        await eventually(lambda: platform.registry.get(added.id) is not None,
                         "the added device in the registry")
        tracked = gc.get_objects()
        assert len(devices) == 200
        assert not {id(d) for d in devices} & {id(o) for o in tracked}
        assert sum(type(o) is Device for o in tracked) < 10  # no copy held while it waits
