"""Starting the platform while InfluxDB is down waits for it instead of exiting."""

from __future__ import annotations

import asyncio

from urbanwatch.platform import Platform
from urbanwatch.services.influxd import Influxd
from urbanwatch.settings import Settings


async def test_start_waits_for_influxdb(settings: Settings, influxd: Influxd) -> None:
    settings.influx.database = "start_waits"
    influxd.stop()
    platform = Platform(settings, serve_api=False)
    opening = asyncio.create_task(platform.__aenter__())
    await asyncio.sleep(2.0)
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
