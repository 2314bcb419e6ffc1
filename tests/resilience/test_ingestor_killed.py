"""The ingestor SIGKILLed twice in the middle of a 50,000-reading QoS 1 stream."""

from __future__ import annotations

import time
from functools import partial
from itertools import accumulate
from random import Random

import pytest

from ingest.timeseries.client import InfluxClient
from simulators.city import City
from tests.support.platform_process import PlatformProcess, by_label, sample
from tests.support.polling import eventually
from tests.support.streams import Stream, as_json, expected_points, readings, stored_points
from urbanwatch.services.mosquitto import Mosquitto

READINGS = 50_000


@pytest.mark.timeout(240)
async def test_killed_twice_every_reading_is_stored_exactly_once(
    platform: PlatformProcess, city: City, influx_db: InfluxClient, mosquitto: Mosquitto,
    topic_prefix: str,
) -> None:
    seed = time.time_ns()
    rng = Random(seed)
    per_device = READINGS // len(city.devices)
    sent = readings(city, per_device, t0_ms=time.time_ns() // 1_000_000 - 3_600_000)
    assert len(sent) == READINGS
    stream = Stream(mosquitto.host, mosquitto.port, topic_prefix,
                    [as_json(city, r) for r in sent], rate=2500).start()  # 20 s
    seen: list[int] = []

    async def stored_at_least(n: float) -> bool:
        seen.append(await influx_db.count())
        return seen[-1] >= n

    # each kill once a random further part of the readings is stored
    targets = list(accumulate(rng.uniform(0.05, 0.25) * READINGS for _ in range(2)))
    try:
        for target in targets:
            await eventually(partial(stored_at_least, target), f"{target:.0f} readings stored",
                             timeout_s=90, interval_s=0.2)
            assert seen[-1] < READINGS, f"everything was stored before the kill (seed {seed})"
            platform.kill()
            platform.start()
            await platform.wait_ready()
        await eventually(lambda: stream.done, "the broker took every reading", timeout_s=90)
    finally:
        stream.close()

    async def all_stored() -> bool:
        return await influx_db.count() >= READINGS

    await eventually(all_stored, f"{READINGS} points in InfluxDB (seed {seed})", timeout_s=90,
                     interval_s=1.0)
    measurements = sorted({d.type for d in city.devices})
    stored = await stored_points(influx_db, measurements)
    expected = expected_points(sent)
    assert len(stored) == READINGS, f"seed {seed}"
    assert stored == expected, f"seed {seed}: {len(stored.keys() - expected.keys())} unexpected"
    metrics = await platform.metrics()
    assert platform.starts == 3
    assert by_label(metrics, "urbanwatch_ingest_rejected_messages_total", "reason") == {}
    redelivered = sample(metrics, "urbanwatch_ingest_redelivered_messages_total")
    print(f"\nkilled twice (seed {seed}): {len(stored)} distinct points stored of {READINGS}; "
          f"the last process saw {redelivered:g} redelivered messages")
