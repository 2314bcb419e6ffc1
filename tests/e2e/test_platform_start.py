"""Starting the platform while InfluxDB is down waits for it instead of exiting."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.polling import eventually
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
