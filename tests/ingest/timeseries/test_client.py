"""InfluxClient against the fixture's real influxd."""

from __future__ import annotations

import time

import pytest

from ingest.errors import InfluxError
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.influxql import DOWNSAMPLE_CQ, quote_ident
from urbanwatch.services.ports import free_port

TS_MS = (int(time.time()) // 60 - 60) * 60_000  # an hour ago: inside the 30d raw policy


async def test_write_then_query_reads_the_points_back(influx_db: InfluxClient) -> None:
    lines = (
        f"air_quality,device_id=aq-0001,district=d1 pm25=35.2,pm10=61 {TS_MS}\n"
        f"air_quality,device_id=aq-0001,district=d1 pm25=36.5,pm10=60 {TS_MS + 1000}\n"
    ).encode()
    await influx_db.write(lines)

    series = await influx_db.query("SELECT pm25, pm10 FROM air_quality WHERE device_id='aq-0001'")

    assert series[0]["columns"] == ["time", "pm25", "pm10"]
    assert series[0]["values"] == [[TS_MS, 35.2, 61.0], [TS_MS + 1000, 36.5, 60.0]]
    assert await influx_db.count("air_quality") == 2


async def test_writing_the_same_point_twice_stores_it_once(influx_db: InfluxClient) -> None:
    line = f"water_level,device_id=wl-1 level_m=1.5 {TS_MS}\n".encode()
    await influx_db.write(line)
    await influx_db.write(line)
    await influx_db.write(f"water_level,device_id=wl-1 level_m=1.7 {TS_MS + 60_000}\n".encode())

    assert await influx_db.count() == 2


async def test_count_counts_points_not_fields_across_measurements(
    influx_db: InfluxClient,
) -> None:
    await influx_db.write(
        f"a,d=1 x=1,y=2,z=3 {TS_MS}\na,d=1 x=1 {TS_MS + 1}\nb,d=2 v=1 {TS_MS}\n".encode()
    )

    assert await influx_db.count("a") == 2
    assert await influx_db.count() == 3


async def test_count_values_counts_readings_and_can_start_at_a_time(
    influx_db: InfluxClient,
) -> None:
    await influx_db.write(
        f"air_quality,device_id=aq-1 pm25=1,pm10=2 {TS_MS}\n"
        f"air_quality,device_id=aq-1 pm25=3 {TS_MS + 60_000}\n"
        f"noise,device_id=n-1 db=50 {TS_MS + 120_000}\n".encode()
    )
    assert await influx_db.count_values() == 4
    assert await influx_db.count_values(since_ms=TS_MS + 60_000) == 2
    assert await influx_db.count_values(since_ms=TS_MS + 180_000) == 0


async def test_ensure_schema_is_idempotent_and_creates_policies_and_cq(
    influx_db: InfluxClient,
) -> None:
    await influx_db.ensure_schema(retention="7d", downsample_retention="400d")
    await influx_db.ensure_schema(retention="7d", downsample_retention="400d")

    rps = await influx_db.query(f"SHOW RETENTION POLICIES ON {quote_ident(influx_db.database)}")
    by_name = {row[0]: dict(zip(rps[0]["columns"], row, strict=True)) for row in rps[0]["values"]}
    assert by_name["raw"]["duration"] == "168h0m0s"
    assert by_name["raw"]["default"] is True
    assert by_name["downsampled"]["duration"] == "9600h0m0s"
    assert by_name["downsampled"]["default"] is False
    cqs = [s for s in await influx_db.query("SHOW CONTINUOUS QUERIES")
           if s["name"] == influx_db.database]
    assert [row[0] for row in cqs[0]["values"]] == [DOWNSAMPLE_CQ]
    assert "GROUP BY time(1m), *" in cqs[0]["values"][0][1]


async def test_default_write_lands_in_the_raw_policy(influx_db: InfluxClient) -> None:
    await influx_db.write(f"m,d=1 v=1 {TS_MS}\n".encode())

    db = quote_ident(influx_db.database)
    assert await influx_db.query(f'SELECT count(v) FROM {db}."raw".m')
    assert await influx_db.query(f'SELECT count(v) FROM {db}."autogen".m') == []


@pytest.mark.parametrize(
    "lines",
    [b"m,d=1 v=1 not-a-time\n", f"m v=\"text\" {TS_MS}\n".encode()],
    ids=["bad-line-protocol", "field-type-conflict"],
)
async def test_client_errors_are_not_retryable(influx_db: InfluxClient, lines: bytes) -> None:
    await influx_db.write(f"m v=1.0 {TS_MS}\n".encode())

    with pytest.raises(InfluxError) as info:
        await influx_db.write(lines)

    assert info.value.status == 400
    assert info.value.retryable is False
    assert info.value.detail


async def test_query_error_raises(influx_db: InfluxClient) -> None:
    with pytest.raises(InfluxError, match="error parsing query") as info:
        await influx_db.query("SELEKT nothing")

    assert info.value.retryable is False


async def test_closed_port_is_retryable() -> None:
    async with InfluxClient(f"http://127.0.0.1:{free_port()}", "x", timeout_s=2) as client:
        assert await client.ping() is False
        with pytest.raises(InfluxError) as info:
            await client.write(b"m v=1 1\n")

    assert info.value.status is None
    assert info.value.retryable is True


async def test_server_errors_are_retryable_and_bodies_are_gzip() -> None:
    import gzip

    import httpx

    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(gzip.decompress(request.content))
        return httpx.Response(503, json={"error": "engine busy"})

    transport = httpx.MockTransport(handler)
    async with InfluxClient("http://influx.invalid", "db", transport=transport) as client:
        with pytest.raises(InfluxError) as info:
            await client.write(b"m v=1 1\n")

    assert seen == [b"m v=1 1\n"]
    assert (info.value.status, info.value.retryable) == (503, True)
    assert info.value.detail == "engine busy"


async def test_stopped_influxd_is_retryable_then_recovers(influx_db: InfluxClient, influxd) -> None:
    influxd.stop()
    with pytest.raises(InfluxError) as info:
        await influx_db.write(f"m v=1 {TS_MS}\n".encode())
    assert info.value.retryable is True

    influxd.start()
    await influx_db.write(f"m v=1 {TS_MS}\n".encode())
    assert await influx_db.count("m") == 1
