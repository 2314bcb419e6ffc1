"""The ingestor end to end: real Mosquitto in, real influxd out, dead letters back on MQTT."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from devices.batch import ReadingBatch
from devices.clock import ArrivalFrontier
from devices.registry import Device, Registry
from ingest.config import IngestConfig
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.timeseries.client import InfluxClient
from tests.support.polling import WAIT_S, eventually

DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def stored_values(influx: InfluxClient, measurement: str, device_id: str) -> dict:
    rows = await influx.query(f"SELECT * FROM {measurement} WHERE device_id = '{device_id}'")
    out: dict[int, dict[str, Any]] = {}
    for series in rows:
        columns = series["columns"]
        for row in series["values"]:
            out[row[0]] = {c: v for c, v in zip(columns[1:], row[1:], strict=True) if v is not None}
    return out


async def test_good_readings_are_all_stored_exactly(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient
) -> None:
    seen: list[ReadingBatch] = []

    async def on_batch(batch: ReadingBatch, now: int, faults: ReadingBatch) -> None:
        seen.append(batch)

    running = await start_ingestor(on_batch=on_batch, batch_size=50, flush_interval_s=0.2)
    t0 = now_ms() - 60_000
    sent: dict[int, dict[str, float]] = {}
    for i in range(120):
        values = {"pm25": 0.1 + i / 3, "pm10": 1e-7 * (i + 1) + 20}
        sent[t0 + i * 100] = values
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i * 100, "m": values})
    senml_ts_s = (t0 + 50_000) / 1000
    publisher.send("city/d1/gw-1/batch", [
        {"bn": "urn:dev:c-1:", "bt": senml_ts_s, "n": "laeq_db", "v": 61.25},
    ])

    counters = running.ingestor.counters
    await eventually(lambda: counters.stored_messages == 121, "121 messages stored")
    assert counters.stored_readings == 241
    assert await influx_db.count("air_quality") == 120
    assert await stored_values(influx_db, "air_quality", "aq-1") == {
        ts: {"device_id": "aq-1", "district": "d1", "grid": "g1", **values}
        for ts, values in sent.items()
    }
    assert await stored_values(influx_db, "noise", "c-1") == {
        round(senml_ts_s * 1000): {"device_id": "c-1", "district": "d1", "laeq_db": 61.25}
    }
    assert sum(len(b) for b in seen) == 241
    assert counters.batches == len(seen) and counters.rejected == Counter()
    assert counters.received == 121 and counters.dead_lettered == 0


BAD = [  # (topic, payload, reason, dead-letter device)
    ("city/d1/aq-1/data", b"{not json", "malformed_json", "aq-1"),
    ("city/d1/aq-1/data", b"\xff\xfe\x00", "malformed_json", "aq-1"),
    ("city/d1/aq-1/data", b'[{"n": 5, "v": 1}]', "malformed_senml", "aq-1"),
    ("city/d1/ghost/data", b'{"m": {"pm25": 1}}', "unknown_device", "ghost"),
    ("city/d1/m-1/data", b'{"m": {"laeq_db": 50}}', "device_not_active", "m-1"),
    ("city/d2/aq-1/data", b'{"m": {"pm25": 1}}', "district_mismatch", "aq-1"),
    ("city/d1/aq-1/data", b'{"m": {"bogus": 1}}', "unknown_metric", "aq-1"),
    ("city/d1/aq-1/data", b'{"m": {"pm25": "high"}}', "non_numeric", "aq-1"),
    ("city/d1/aq-1/data", b'{"m": {"pm25": NaN}}', "not_finite", "aq-1"),
    ("city/d1/aq-1/data", b'{"m": {"pm25": 5000}}', "out_of_range", "aq-1"),
    ("city/d1/aq-1/data", b'{"ts": OLD, "m": {"pm25": 1}}', "too_old", "aq-1"),
    ("city/d1/aq-1/data", b'{"ts": FUTURE, "m": {"pm25": 1}}', "in_future", "aq-1"),
    ("city/d1/aq-1/data", b'{"m": {"pm25": 1}, "pad": "' + b"x" * 70_000 + b'"}',
     "too_large", "aq-1"),
]


async def test_following_the_readings_a_device_an_hour_ahead_of_the_city_is_in_the_future(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient,
) -> None:
    """A city at 100x: no wall clock can tell a skewed device, the other devices can."""
    frontier = ArrivalFrontier(company=2)  # a small city
    running = await start_ingestor(batch_size=1000, flush_interval_s=0.1, frontier=frontier)
    counters, start, t0 = running.ingestor.counters, time.monotonic(), now_ms() + DAY_MS

    def city(skewed: bool) -> int:
        ts = t0 + int(100_000 * (time.monotonic() - start))
        publisher.send("city/d1/aq-2/data", {"ts": ts, "m": {"pm25": 5, "pm10": 9}})
        publisher.send("city/d2/n-1/data", {"ts": ts, "m": {"laeq_db": 50}})
        if skewed:
            publisher.send("city/d1/aq-1/data", {"ts": ts + 3_600_000, "m": {"pm25": 5}})
        return 2 + skewed

    sent = 0
    while frontier.limit_ms() is None:  # a day ahead of the wall clock: fine until it is known
        sent += city(skewed=False)
        await asyncio.sleep(0.05)
    for _ in range(20):
        sent += city(skewed=True)
        await asyncio.sleep(0.05)

    await eventually(lambda: len(deadletters.received) == 20, "the skewed readings refused")
    await eventually(lambda: counters.stored_messages == sent - 20, "the city's readings")
    assert {letter["reason"] for _, letter in deadletters.received} == {"in_future"}
    assert {topic.rsplit("/", 1)[1] for topic, _ in deadletters.received} == {"aq-1"}
    assert await influx_db.count("noise") == (sent - 20) // 2


async def test_every_bad_kind_is_dead_lettered_and_the_stream_goes_on(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient,
    topic_prefix: str,
) -> None:
    running = await start_ingestor(batch_size=20, flush_interval_s=0.2)
    t0 = now_ms() - 10_000
    good = 0
    for i, (topic, payload, _, _) in enumerate(BAD):
        payload = payload.replace(b"OLD", str(now_ms() - 8 * DAY_MS).encode())
        payload = payload.replace(b"FUTURE", str(now_ms() + 3_600_000).encode())
        publisher.send("city/d2/n-1/data", {"ts": t0 + i, "m": {"laeq_db": 40 + i}})
        publisher.send(topic, payload)
        good += 1
    publisher.send("city/d2/n-1/data", {"ts": t0 + 99, "m": {"laeq_db": 99}})
    good += 1

    counters = running.ingestor.counters
    await eventually(lambda: len(deadletters.received) == len(BAD), "every dead letter")
    await eventually(lambda: counters.stored_messages == good, "every good message stored")
    assert not running.task.done()
    # a reading-level problem of a one-reading message refuses that reading, not the message
    assert counters.rejected + counters.readings_rejected == Counter(r for _, _, r, _ in BAD)
    await eventually(lambda: counters.dead_lettered == len(BAD), "dead letters confirmed")
    assert counters.received == good + len(BAD)
    assert await influx_db.count("noise") == good

    letters = sorted(deadletters.received, key=lambda t: t[1]["reason"])
    expected = sorted(BAD, key=lambda b: b[2])
    for (topic, letter), (src_topic, _, reason, device) in zip(letters, expected, strict=True):
        assert topic == f"{topic_prefix}deadletter/{device}"
        assert letter["reason"] == reason and letter["detail"]
        assert letter["topic"] == topic_prefix + src_topic
    by_reason = {letter["reason"]: letter for _, letter in letters}
    assert by_reason["too_large"]["truncated"] is True
    assert by_reason["unknown_metric"]["payload"] == '{"m": {"bogus": 1}}'
    assert by_reason["unknown_metric"]["metric"] == "bogus"
    assert "metric" not in by_reason["malformed_json"]  # refused whole
    assert {letter["encoding"] for letter in by_reason.values()} == {"utf-8", "base64"}

    # Everything was acknowledged: the next session gets only what is new.
    await running.shutdown()
    second = await start_ingestor(batch_size=1, flush_interval_s=0.1)
    publisher.send("city/d2/n-1/data", {"ts": t0 + 100, "m": {"laeq_db": 70}})
    c = second.ingestor.counters
    await eventually(lambda: c.received > c.redelivered and c.stored_messages
                     + c.rejected.total() >= c.received, "the new message")
    # Only the new message is new; an acknowledgement still in flight at the disconnect may
    # bring an old one back, but flagged as a redelivery (DUP), never as a fresh copy.
    assert c.received - c.redelivered == 1
    assert await influx_db.count("noise") == good + 1


async def test_a_type_conflicting_point_is_split_out_and_dead_lettered(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient,
    topic_prefix: str,
) -> None:
    ts = now_ms() - 5_000
    # laeq_db already exists as a string field in this shard: a float write conflicts.
    await influx_db.write(f'noise,device_id=other laeq_db="loud" {ts}'.encode())
    running = await start_ingestor(batch_size=1000, flush_interval_s=0.5)
    for i in range(20):
        publisher.send("city/d1/aq-2/data", {"ts": ts + i, "m": {"pm25": i, "pm10": i}})
        if i == 13:
            publisher.send("city/d2/n-1/data", {"ts": ts, "m": {"laeq_db": 50}})

    counters = running.ingestor.counters
    await eventually(lambda: counters.stored_messages == 21, "all messages handled")
    await eventually(lambda: len(deadletters.received) == 1, "the dead letter")
    topic, letter = deadletters.received[0]
    assert topic == f"{topic_prefix}deadletter/n-1"
    assert letter["reason"] == "write_rejected" and "conflict" in letter["detail"]
    assert letter["payload"] == f"noise,device_id=n-1,district=d2,grid=g7 laeq_db=50.0 {ts}\n"
    assert letter["topic"] == f"{topic_prefix}city/d2/n-1/data"
    assert counters.points_rejected == 1 and counters.stored_readings == 40
    assert await influx_db.count("air_quality") == 20
    assert not running.task.done()


async def test_influx_outage_holds_the_batch_and_retries(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient, influxd: Any
) -> None:
    running = await start_ingestor(batch_size=10, flush_interval_s=0.1, retry_max_s=0.5)
    counters = running.ingestor.counters
    influxd.stop()
    t0 = now_ms() - 10_000
    for i in range(30):
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i, "m": {"pm25": i}})
    await eventually(lambda: counters.write_errors >= 2, "failed write attempts")
    assert counters.stored_messages == 0
    influxd.start()
    await eventually(lambda: counters.stored_messages == 30, "the held batches stored")
    assert await influx_db.count("air_quality") == 30


async def test_unstored_messages_are_redelivered_to_the_next_session(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient, influxd: Any
) -> None:
    first = await start_ingestor(batch_size=100, flush_interval_s=0.1, retry_max_s=0.5)
    influxd.stop()
    t0 = now_ms() - 10_000
    for i in range(25):
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i, "m": {"pm25": i}})
    await eventually(lambda: first.ingestor.counters.received == 25, "all received")
    await eventually(lambda: first.ingestor.counters.write_errors >= 1, "a failed write")
    await first.shutdown()  # gives up on the batch: nothing acknowledged
    assert first.ingestor.counters.stored_messages == 0
    influxd.start()

    second = await start_ingestor(batch_size=100, flush_interval_s=0.1)
    counters = second.ingestor.counters
    await eventually(lambda: counters.stored_messages == 25, "redelivered messages stored")
    assert counters.redelivered == 25
    assert await influx_db.count("air_quality") == 25


async def test_a_small_buffer_still_delivers_everything(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient
) -> None:
    running = await start_ingestor(batch_size=7, max_pending_messages=10, flush_interval_s=0.05)
    t0 = now_ms() - 10_000
    for i in range(200):
        publisher.send("city/d1/aq-2/data", {"ts": t0 + i, "m": {"pm10": i}})
    counters = running.ingestor.counters
    await eventually(lambda: counters.stored_messages == 200, "200 messages stored")
    assert await influx_db.count("air_quality") == 200
    assert counters.batches >= 200 // 7


async def test_a_small_byte_budget_still_delivers_everything(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient, deadletters: Any
) -> None:
    """Held payload bytes are given back for stored and for dead-lettered messages alike: a
    budget of a few messages lets a long stream of both through."""
    running = await start_ingestor(batch_size=50, max_pending_bytes=600, flush_interval_s=0.05)
    t0 = now_ms() - 10_000
    for i in range(200):
        if i % 10 == 9:
            publisher.send("city/d1/aq-2/data", b"not json " + b"x" * 300)
        else:
            publisher.send("city/d1/aq-2/data", {"ts": t0 + i, "m": {"pm10": i}})
    counters = running.ingestor.counters
    await eventually(lambda: counters.stored_messages == 180, "180 messages stored")
    await eventually(lambda: counters.dead_lettered == 20, "20 letters confirmed")
    assert await influx_db.count("air_quality") == 180


async def test_a_flood_of_rejects_larger_than_the_buffer_is_all_dead_lettered(
    start_ingestor: Any, publisher: Any, deadletters: Any, influx_db: InfluxClient
) -> None:
    """A rejected message keeps its buffer place until the broker has its letter; the
    letters' PUBACKs come on their own connection, so a full buffer cannot stall them."""
    running = await start_ingestor(batch_size=7, max_pending_messages=10, flush_interval_s=0.05)
    t0 = now_ms() - 10_000
    for i in range(200):
        if i % 4 == 0:
            publisher.send("city/d1/aq-2/data", {"ts": t0 + i, "m": {"pm10": i}})
        else:
            publisher.send("city/d1/aq-2/data", b"not json %d" % i)
    counters = running.ingestor.counters
    await eventually(lambda: len(deadletters.received) == 150, "150 dead letters")
    await eventually(lambda: counters.stored_messages == 50, "50 good messages stored")
    await eventually(lambda: counters.dead_lettered == 150, "every letter confirmed")
    assert await influx_db.count("air_quality") == 50
    assert running.ingestor.connected


async def test_the_ingestor_reconnects_after_a_broker_restart(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient, mosquitto: Any
) -> None:
    running = await start_ingestor(batch_size=100, flush_interval_s=0.1)
    counters = running.ingestor.counters
    t0 = now_ms() - 10_000
    for i in range(10):
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i, "m": {"pm25": i}})
    await eventually(lambda: counters.stored_messages == 10, "first messages stored")
    mosquitto.restart()
    await eventually(publisher.client.is_connected, "the publisher back")
    for i in range(10, 20):
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i, "m": {"pm25": i}})
    # Acknowledgements in flight at the restart may be lost: those messages come again.
    await eventually(lambda: counters.received - counters.redelivered == 20, "all 20 received")
    await eventually(lambda: counters.stored_messages == counters.received, "all stored")
    assert await influx_db.count("air_quality") == 20


async def test_stopping_flushes_and_acknowledges_the_pending_batch(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient
) -> None:
    first = await start_ingestor(batch_size=1000, flush_interval_s=3600)
    t0 = now_ms() - 10_000
    for i in range(5):
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i, "m": {"pm25": i}})
    await eventually(lambda: first.ingestor.counters.received == 5, "all received")
    assert first.ingestor.counters.stored_messages == 0  # neither size nor time reached
    await first.shutdown()
    assert first.ingestor.counters.stored_messages == 5
    assert await influx_db.count("air_quality") == 5

    second = await start_ingestor(batch_size=1, flush_interval_s=0.1)
    publisher.send("city/d1/aq-1/data", {"ts": t0 + 10, "m": {"pm25": 10}})
    counters = second.ingestor.counters
    await eventually(lambda: counters.stored_messages == 1, "the new message stored")
    assert (counters.received, counters.redelivered) == (1, 0)  # the five did not come back


async def test_a_failing_on_batch_does_not_stop_ingest(
    start_ingestor: Any, publisher: Any, influx_db: InfluxClient
) -> None:
    async def on_batch(batch: ReadingBatch, now: int, faults: ReadingBatch) -> None:
        raise RuntimeError("engine bug")

    running = await start_ingestor(on_batch=on_batch, batch_size=1, flush_interval_s=0.1)
    t0 = now_ms() - 10_000
    for i in range(3):
        publisher.send("city/d1/aq-1/data", {"ts": t0 + i, "m": {"pm25": i}})
    counters = running.ingestor.counters
    await eventually(lambda: counters.on_batch_errors == 3, "three failed callbacks")
    assert counters.stored_messages == 3 and not running.task.done()
    assert await influx_db.count("air_quality") == 3


async def test_devices_added_while_running_are_picked_up(
    settings: Any, influx_db: InfluxClient, registry: Registry, publisher: Any
) -> None:
    current = [registry]
    ingestor = Ingestor(IngestConfig.from_settings(settings, flush_interval_s=0.1),
                        lambda: current[0], InfluxSink(influx_db, lambda: current[0]))
    stop = asyncio.Event()
    task = asyncio.create_task(ingestor.run(stop))
    try:
        await ingestor.wait_ready(WAIT_S)
        t0 = now_ms() - 10_000
        publisher.send("city/d3/ws-1/data", {"ts": t0, "m": {"laeq_db": 50}})
        await eventually(lambda: ingestor.counters.rejected["unknown_device"] == 1, "rejected")

        new = Device("ws-1", "noise", "d3", 0.0, 0.0, grid="g9")
        current[0] = Registry.build(registry.catalogue, [*registry.devices.values(), new])
        publisher.send("city/d3/ws-1/data", {"ts": t0 + 1, "m": {"laeq_db": 51}})
        await eventually(lambda: ingestor.counters.stored_readings == 1, "the new device stored")
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
    rows = await influx_db.query("SELECT laeq_db, grid FROM noise WHERE device_id = 'ws-1'")
    assert rows[0]["values"] == [[t0 + 1, 51.0, "g9"]]
