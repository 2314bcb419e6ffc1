"""Partly bad messages, end to end (real Mosquitto in, real influxd out): the good readings
are stored, each bad one is dead-lettered with its reason, out-of-range ones go on as faults."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from devices.batch import ReadingBatch
from devices.registry import Registry
from ingest.timeseries.client import InfluxClient
from tests.support.polling import eventually


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def stored(influx: InfluxClient, measurement: str, device_id: str) -> dict[int, dict]:
    rows = await influx.query(f"SELECT * FROM {measurement} WHERE device_id = '{device_id}'")
    return {row[0]: {c: v for c, v in zip(s["columns"][1:], row[1:], strict=True)
                     if v is not None and c not in ("device_id", "district", "grid")}
            for s in rows for row in s["values"]}


class Faults:
    """An `on_batch` keeping every fault handed over, as (device, metric, ts, value)."""

    def __init__(self, registry: Registry) -> None:
        self.registry, self.seen = registry, []

    async def __call__(self, batch: ReadingBatch, now: int, faults: ReadingBatch) -> None:
        for slot, ts, value in zip(faults.slot, faults.ts_ms, faults.value, strict=True):
            series = self.registry.series(int(slot))
            self.seen.append((series.device_id, series.metric, int(ts), float(value)))


def by_metric(letters: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[str, str, str]]:
    return {letter["metric"]: (topic, letter["reason"], letter["payload"])
            for topic, letter in letters}


async def test_a_mixed_compact_message_stores_the_good_and_dead_letters_each_bad_reading(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient,
    topic_prefix: str, registry: Registry,
) -> None:
    faults = Faults(registry)
    running = await start_ingestor(on_batch=faults, batch_size=10, flush_interval_s=0.1)
    t0 = now_ms() - 10_000
    message = {"ts": t0, "m": {"pm25": 35, "bogus": 1, "pm10": 99999}}
    publisher.send("city/d1/aq-1/data", message)

    counters = running.ingestor.counters
    await eventually(lambda: counters.dead_lettered == 2, "both letters confirmed")
    assert counters.stored_messages == 1 and counters.stored_readings == 1
    assert await stored(influx_db, "air_quality", "aq-1") == {t0: {"pm25": 35.0}}
    payload = json.dumps(message)
    assert by_metric(deadletters.received) == {
        "bogus": (f"{topic_prefix}deadletter/aq-1", "unknown_metric", payload),
        "pm10": (f"{topic_prefix}deadletter/aq-1", "out_of_range", payload),
    }
    assert all(letter["detail"] and letter["topic"] == f"{topic_prefix}city/d1/aq-1/data"
               for _, letter in deadletters.received)
    assert counters.readings_rejected == Counter({"unknown_metric": 1, "out_of_range": 1})
    assert counters.rejected == Counter()
    assert faults.seen == [("aq-1", "pm10", t0, 99999.0)]


async def test_senml_packs_keep_their_good_records(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient,
    topic_prefix: str, registry: Registry,
) -> None:
    faults = Faults(registry)
    running = await start_ingestor(on_batch=faults, batch_size=10, flush_interval_s=0.1)
    t0_s = (now_ms() - 10_000) // 1000
    publisher.send("city/d1/aq-2/data", [
        {"bn": "urn:dev:aq-2:", "bt": t0_s, "n": "pm25", "v": 10},
        {"n": "pm10", "v": -5}, {"n": "co", "v": 1.5},
    ])
    publisher.send("city/d1/gw-1/batch", [
        {"bt": t0_s, "n": "urn:dev:c-1:laeq_db", "v": 61.5},
        {"n": "urn:dev:c-1:laeq_db", "v": 400, "t": 1},
        {"n": "urn:dev:n-1:laeq_db", "v": 50},  # not behind this gateway
        {"n": "urn:dev:c-1:laeq_db", "v": 62.5, "t": 2},
    ])
    publisher.send("city/d1/gw-1/batch", b"[not json")  # still refused whole

    counters = running.ingestor.counters
    await eventually(lambda: counters.dead_lettered == 4, "four letters confirmed")
    assert counters.stored_messages == 2 and counters.stored_readings == 4
    t0 = t0_s * 1000
    assert await stored(influx_db, "air_quality", "aq-2") == {t0: {"pm25": 10.0, "co": 1.5}}
    assert await stored(influx_db, "noise", "c-1") == {t0: {"laeq_db": 61.5},
                                                        t0 + 2000: {"laeq_db": 62.5}}
    partial = [(t, letter) for t, letter in deadletters.received if "metric" in letter]
    assert {(topic, letter["metric"], letter["reason"]) for topic, letter in partial} == {
        (f"{topic_prefix}deadletter/aq-2", "pm10", "out_of_range"),
        (f"{topic_prefix}deadletter/c-1", "laeq_db", "out_of_range"),
        (f"{topic_prefix}deadletter/n-1", "laeq_db", "unknown_device"),
    }
    whole = [(t, letter) for t, letter in deadletters.received if "metric" not in letter]
    assert [(t, letter["reason"]) for t, letter in whole] == [
        (f"{topic_prefix}deadletter/gw-1", "malformed_json")]
    assert counters.rejected == Counter({"malformed_json": 1})
    assert counters.readings_rejected == Counter({"out_of_range": 2, "unknown_device": 1})
    assert sorted(faults.seen) == [("aq-2", "pm10", t0, -5.0), ("c-1", "laeq_db", t0 + 1000, 400.0)]


async def test_a_message_with_only_bad_readings_is_acknowledged_once_its_letters_are_taken(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient,
    registry: Registry,
) -> None:
    faults = Faults(registry)
    running = await start_ingestor(on_batch=faults, batch_size=10, flush_interval_s=0.1)
    t0 = now_ms() - 10_000
    publisher.send("city/d1/aq-1/data", {"ts": t0, "m": {"pm25": 5000, "pm10": -1}})
    counters = running.ingestor.counters
    await eventually(lambda: counters.dead_lettered == 2, "both letters confirmed")
    await eventually(lambda: len(faults.seen) == 2, "both faults handed on")
    assert counters.stored_messages == 0 and await influx_db.count("air_quality") == 0

    # acknowledged: a new session gets only what is new
    await running.shutdown()
    second = await start_ingestor(batch_size=1, flush_interval_s=0.1)
    publisher.send("city/d1/aq-1/data", {"ts": t0 + 1, "m": {"pm25": 5}})
    c = second.ingestor.counters
    await eventually(lambda: c.stored_messages >= 1, "the new message")
    assert c.received - c.redelivered == 1
