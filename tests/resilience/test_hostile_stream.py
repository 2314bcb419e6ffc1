"""20,000 good readings interleaved with 20,000 hostile messages, into one ingestor process."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from random import Random

import pytest

from ingest.timeseries.client import InfluxClient
from simulators.city import City
from tests.support.deadletters import DeadLetters
from tests.support.platform_process import PlatformProcess, Samples, by_label, sample
from tests.support.polling import eventually
from tests.support.streams import (
    Outgoing,
    Stream,
    as_duplicated_senml,
    as_json,
    expected_points,
    hostile,
    readings,
    stored_points,
)
from urbanwatch.services.mosquitto import Mosquitto

GOOD = HOSTILE = 20_000
RSS_GROWTH_LIMIT = 150 << 20  # generous: the point is "bounded", not a benchmark
SAMPLE_S = 0.2


def refused(m: Samples) -> Counter[str]:
    """Messages refused whole, plus single readings refused (each hostile message has one)."""
    return (Counter(by_label(m, "urbanwatch_ingest_rejected_messages_total", "reason"))
            + Counter(by_label(m, "urbanwatch_ingest_rejected_readings_total", "reason")))


@pytest.mark.timeout(240)
async def test_hostile_messages_are_dead_lettered_and_good_ones_all_stored(
    platform: PlatformProcess, city: City, influx_db: InfluxClient, mosquitto: Mosquitto,
    deadletters: DeadLetters, topic_prefix: str,
) -> None:
    seed = time.time_ns()
    rng = Random(seed)
    now_ms = time.time_ns() // 1_000_000
    good = readings(city, GOOD // len(city.devices), t0_ms=now_ms - 3_600_000)
    good_messages = [  # every 20th as a SenML pack naming its reading twice (the last wins)
        as_duplicated_senml(city, r, shadow=r.value + 1) if i % 20 == 0 else as_json(city, r)
        for i, r in enumerate(good)
    ]
    bad = hostile(city, HOSTILE, now_ms, rng)
    messages: list[Outgoing] = [m for pair in zip(good_messages, (o for o, _ in bad),
                                                  strict=True) for m in pair]
    expected_reasons = Counter(reason for _, reason in bad)
    pid = platform.pid
    rss: list[int] = []

    async def sample_rss() -> None:
        while True:
            rss.append(platform.rss_bytes())
            await asyncio.sleep(SAMPLE_S)

    sampler = asyncio.create_task(sample_rss())
    stream = Stream(mosquitto.host, mosquitto.port, topic_prefix, messages).start()
    try:
        await eventually(lambda: stream.done, "the broker took every message", timeout_s=120)

        async def all_handled() -> bool:
            m = await platform.metrics()
            return (sample(m, "urbanwatch_ingest_stored_readings_total") >= GOOD
                    and sum(refused(m).values()) >= HOSTILE)

        await eventually(all_handled, "every message stored or rejected", timeout_s=90,
                         interval_s=0.5)
        await eventually(lambda: deadletters.by_reason.total() >= HOSTILE, "every dead letter",
                         timeout_s=60)
    finally:
        stream.close()
        sampler.cancel()

    metrics = await platform.metrics()
    rejected = refused(metrics)
    assert rejected == expected_reasons, f"seed {seed}"
    assert deadletters.by_reason == expected_reasons, f"seed {seed}"
    assert sample(metrics, "urbanwatch_ingest_dead_letters_total") == HOSTILE
    assert sample(metrics, "urbanwatch_ingest_received_messages_total") == GOOD + HOSTILE
    assert sample(metrics, "urbanwatch_ingest_stored_readings_total") == GOOD
    stored = await stored_points(influx_db, sorted({d.type for d in city.devices}))
    assert stored == expected_points(good), f"seed {seed}"

    assert platform.running() and platform.pid == pid and platform.starts == 1
    quarter = max(1, len(rss) // 4)
    first, last = statistics.median(rss[:quarter]), statistics.median(rss[-quarter:])
    assert last - first < RSS_GROWTH_LIMIT, f"RSS grew from {first:.0f} to {last:.0f} bytes"
    print(f"\nhostile stream (seed {seed}): {GOOD} good stored, {HOSTILE} dead-lettered "
          f"{dict(sorted(rejected.items()))}; RSS median first quarter {first / 2**20:.0f} MiB, "
          f"last quarter {last / 2**20:.0f} MiB, peak {max(rss) / 2**20:.0f} MiB "
          f"({len(rss)} samples)")
