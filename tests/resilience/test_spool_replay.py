"""Readings spooled before a restart are replayed after it under their own device, metric and
measurement, though devices were added, retired and re-typed in between (`urbanwatch
devices ...`), which shifts every registry slot; a version-1 record left in the spool is
dead-lettered with its reason, not written anywhere."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from devices.registry import Device
from ingest.timeseries.client import InfluxClient
from simulators.city import City
from tests.support.deadletters import DeadLetters
from tests.support.platform_process import PlatformProcess, sample
from tests.support.polling import eventually
from tests.support.stored_readings import Where, stored_readings
from tests.support.streams import Outgoing, Stream
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.settings import Settings

N_TIMES = 3


def first(city: City, device_type: str, n: int = 1) -> list[Device]:
    return [d for d in city.devices if d.type == device_type][:n]


def urbanwatch(settings: Settings, *args: str) -> None:
    command = [str(Path(sys.executable).with_name("urbanwatch")), "devices", *args,
               "--db-url", settings.db_url, "--state-dir", str(settings.state_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def messages(city: City, devices: list[Device], t0_ms: int) -> tuple[list[Outgoing],
                                                                     dict[Where, float]]:
    """Two metrics (or the one) of each device at `N_TIMES` times, and where each belongs."""
    out, expected = [], {}
    for k, device in enumerate(devices):
        metrics = list(city.catalogue[device.type].metrics.values())[:2]
        for t in range(N_TIMES):
            ts = t0_ms + t * 1000
            m = {metric.name: round(metric.min + (metric.max - metric.min) * (k + t / 4) / 64, 4)
                 for metric in metrics}  # in range, and distinct
            body = json.dumps({"ts": ts, "m": m}).encode()
            out.append(Outgoing(f"city/{device.district}/{device.id}/data", body))
            expected.update({(device.type, device.id, metric, ts): v for metric, v in m.items()})
    return out, expected


def version_1_segment(spool_dir: Path, n: int, ts_ms: int) -> None:
    """A record of the old format: slots 0..n-1, which now name other series entirely."""
    payload = b"".join((struct.pack("<Q", n), np.arange(n, dtype="<i8").tobytes(),
                        np.full(n, ts_ms, "<i8").tobytes(), np.ones(n, "<f8").tobytes()))
    (spool_dir / "seg-000000999999.spool").write_bytes(
        struct.pack("<4sII", b"UWS1", len(payload), zlib.crc32(payload)) + payload)


@pytest.mark.timeout(240)
async def test_spool_replay_after_add_retire_retype_writes_every_reading_to_the_right_series(
    platform: PlatformProcess, city: City, settings: Settings, influx_db: InfluxClient,
    influxd: Influxd, mosquitto: Mosquitto, topic_prefix: str, deadletters: DeadLetters,
) -> None:
    (retired,) = first(city, "air_quality")
    (retyped_aq, _), (retyped_noise,) = first(city, "air_quality", 2)[::-1], first(city, "noise")
    kept = [*first(city, "traffic_flow"), *first(city, "weather"), *first(city, "gas")]
    sent, expected = messages(city, [retired, retyped_aq, retyped_noise, *kept],
                              time.time_ns() // 1_000_000 - 3_600_000)
    n_readings = len(expected)

    influxd.stop()
    stream = Stream(mosquitto.host, mosquitto.port, topic_prefix, sent).start()
    try:
        async def all_spooled() -> bool:
            metrics = await platform.metrics()
            return sample(metrics, "urbanwatch_ingest_spooled_readings_total") == n_readings

        await eventually(all_spooled, f"{n_readings} readings spooled\n{platform.log_tail()}",
                         timeout_s=60)
    finally:
        stream.close()
    assert platform.stop() == 0, platform.log_tail()
    spool_dir = settings.state_dir / "spool"
    assert list(spool_dir.glob("seg-*.spool")), "nothing left in the spool to replay"
    v1_ts = time.time_ns() // 1_000_000 - 7_200_000
    version_1_segment(spool_dir, 4, v1_ts)

    # Every slot moves: a device sorting first, one retired, two re-typed to types with
    # other metrics (so even their old series have no slot any more).
    urbanwatch(settings, "add", "0-first", "--type", "air_quality", "--district",
               retired.district, "--lat", str(retired.lat), "--lon", str(retired.lon))
    urbanwatch(settings, "set-status", retired.id, "retired")
    retypes = settings.state_dir / "retype.csv"
    retypes.write_text("id,type,district,grid,lat,lon\n" + "".join(
        f"{d.id},{new},{d.district},{d.grid},{d.lat},{d.lon}\n"
        for d, new in ((retyped_aq, "noise"), (retyped_noise, "water_level"))))
    urbanwatch(settings, "import", str(retypes))

    influxd.start()
    platform.start()
    await platform.wait_ready()

    async def replayed() -> bool:
        metrics = await platform.metrics()
        return (sample(metrics, "urbanwatch_ingest_replayed_readings_total") == n_readings
                and sample(metrics, "urbanwatch_ingest_spool_bytes") == 0)

    await eventually(replayed, f"{n_readings} readings replayed\n{platform.log_tail()}",
                     timeout_s=60)
    stored = await stored_readings(influx_db)
    assert stored == expected  # each under its own device, metric and old measurement
    assert not any(ts == v1_ts for (*_, ts) in stored)

    await eventually(lambda: deadletters.by_reason["spool_unplaceable"] == 1,
                     "the version-1 record dead-lettered")
    ((topic, letter),) = deadletters.received
    assert topic == f"{topic_prefix}deadletter/unknown"
    assert "version-1" in letter["detail"] and "(4 readings)" in letter["detail"]
    metrics = await platform.metrics()
    assert sample(metrics, "urbanwatch_ingest_spool_unplaceable_records_total") == 1
    assert list(spool_dir.glob("seg-*.spool")) == []
