"""A managed influxd listening beyond loopback requires a login, and the platform uses the one
made for it: the platform starts, stores readings' schema, and an anonymous query is refused."""

from __future__ import annotations

import httpx
import pytest

from ingest.errors import InfluxError
from ingest.timeseries.client import InfluxClient
from tests.support.platform_run import running
from urbanwatch.services.broker_auth import managed_services
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings


async def test_the_platform_logs_in_to_its_influxd_bound_beyond_loopback(
    settings: Settings,
) -> None:
    settings.influx.url = None
    settings.influx.port, settings.influx.host = free_port(), "0.0.0.0"
    try:
        async with running(settings) as platform:
            assert platform.influx is not None
            assert await platform.influx.ping()
            assert [settings.influx.database] in (
                await platform.influx.query("SHOW DATABASES"))[0]["values"]
            url = f"http://127.0.0.1:{settings.influx.port}"
            async with InfluxClient(url, settings.influx.database) as anonymous:
                with pytest.raises(InfluxError):
                    await anonymous.query("SHOW MEASUREMENTS")
            async with httpx.AsyncClient() as http:
                response = await http.get(f"{url}/query", params={"q": "SHOW DATABASES"})
            assert response.status_code == 401
    finally:  # the platform stops what it started; this is in case it did not get that far
        managed_services(settings).influx.stop()
