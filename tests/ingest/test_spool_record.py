"""The spool record format: round trip, and readings placed by the names the record carries."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from ingest.spool_record import RecordEncoder, Unplaceable, decode_record
from ingest.timeseries.lineprotocol import LineEncoder, SeriesName

TS = 1_732_252_800_000


def city(*devices: Device) -> Registry:
    return Registry.build(load_catalogue(), devices)


AQ = Device("aq 1,x=y", "air_quality", "old town", 0.0, 0.0, grid="g=1")
NOISE = Device("n-1", "noise", "harbour", 0.0, 0.0)  # no grid: no grid tag
GAUGE = Device("g-1", "water_level", "harbour", 0.0, 0.0, grid="g2")


def readings(registry: Registry, rows: list[tuple[str, str, int, float]]) -> ReadingBatch:
    slots = [registry.slot(device, metric) for device, metric, _, _ in rows]
    return ReadingBatch.from_columns(slots, [r[2] for r in rows], [r[3] for r in rows])


ROWS = [
    ("n-1", "laeq_db", TS, 61.5),
    ("aq 1,x=y", "pm25", TS, np.nan),
    ("aq 1,x=y", "pm10", TS, -0.0),
    ("aq 1,x=y", "pm25", TS + 1, 1e300),
    ("n-1", "laeq_db", 2**62, 5e-324),
    ("aq 1,x=y", "pm25", TS, 7.25),  # the same series and time again: the later one wins
]


def test_round_trip_keeps_every_reading_and_names_each_series() -> None:
    registry = city(AQ, NOISE)
    batch = readings(registry, ROWS)
    record = decode_record(2, RecordEncoder().encode(registry, batch))
    assert sorted(record.series, key=str) == sorted([
        SeriesName("air_quality", (("device_id", "aq 1,x=y"), ("district", "old town"),
                                   ("grid", "g=1")), "pm25"),
        SeriesName("air_quality", (("device_id", "aq 1,x=y"), ("district", "old town"),
                                   ("grid", "g=1")), "pm10"),
        SeriesName("noise", (("device_id", "n-1"), ("district", "harbour")), "laeq_db"),
    ], key=str)  # only the series of the batch, each once
    named = [(record.series[s].device_id, record.series[s].metric) for s in record.batch.slot]
    assert named == [(d, m) for d, m, _, _ in ROWS]
    assert record.batch.ts_ms.tolist() == batch.ts_ms.tolist()
    assert np.array_equal(record.batch.value, batch.value, equal_nan=True)
    assert np.signbit(record.batch.value[2])
    # replayed, the record's lines are the very bytes a live write would have sent
    live = LineEncoder(registry).encode(batch)
    assert LineEncoder(record.series).encode(record.batch).body == live.body


def test_an_empty_batch_round_trips() -> None:
    record = decode_record(2, RecordEncoder().encode(city(AQ), ReadingBatch.empty()))
    assert record.series == () and len(record.batch) == 0


def test_a_record_is_placed_by_its_names_whatever_the_registry_became() -> None:
    """Written before devices were added, retired, re-typed or deleted; read back by a
    registry that loads in another order: every reading keeps its device, metric and
    measurement, because nothing of the later registry is consulted."""
    before = city(AQ, NOISE)
    batch = readings(before, ROWS)
    payload = RecordEncoder().encode(before, batch)
    retyped = Device("n-1", "water_level", "harbour", 0.0, 0.0)
    after = city(GAUGE, retyped)  # aq deleted, n-1 re-typed, g-1 added, slots shifted
    assert after.slot("g-1", "level_m") == before.slot("aq 1,x=y", "pm25")  # a trap if trusted
    record = decode_record(2, payload)
    body = LineEncoder(record.series).encode(record.batch).body
    assert body == LineEncoder(before).encode(batch).body
    assert b"water_level" not in body and body.count(b"noise,device_id=n-1,") == 2


def test_a_retired_device_in_the_record_is_still_written() -> None:
    """A reading taken before its device was retired is a real reading: it is stored."""
    registry = city(AQ, NOISE)
    record = decode_record(2, RecordEncoder().encode(registry, readings(registry, ROWS[:1])))
    gone = city(AQ)  # n-1 no longer in the registry at all
    assert gone.get("n-1") is None
    assert LineEncoder(record.series).encode(record.batch).body == (
        f"noise,device_id=n-1,district=harbour laeq_db=61.5 {TS}\n".encode())


def test_the_encoder_names_series_from_the_registry_it_is_given_now() -> None:
    """A device re-typed in this process: batches spooled after it carry the new type."""
    encoder = RecordEncoder()
    registry = city(AQ, NOISE)
    first = decode_record(2, encoder.encode(registry, readings(registry, ROWS[:1])))
    registry = registry.updated([Device("n-1", "water_level", "harbour", 0.0, 0.0)])
    slot = registry.slot("n-1", "laeq_db")
    later = decode_record(2, encoder.encode(registry, ReadingBatch.from_columns([slot], [TS], [1])))
    assert first.series[0].measurement == "noise"
    assert later.series[0].measurement == "water_level"


def test_a_version_1_record_is_unplaceable_with_its_reason() -> None:
    v1 = struct.pack("<Q", 2) + np.array([0, 1, TS, TS], "<i8").tobytes() + bytes(16)
    with pytest.raises(Unplaceable) as raised:
        decode_record(1, v1)
    assert raised.value.n_readings == 2
    assert "version-1" in raised.value.detail and "slots" in raised.value.detail


def good_payload() -> bytes:
    registry = city(AQ, NOISE)
    return RecordEncoder().encode(registry, readings(registry, ROWS[:2]))


def with_table(table: object, index: list[int]) -> bytes:
    body = json.dumps(table).encode()
    n = len(index)
    return (struct.pack("<QI", n, len(body)) + body + np.array(index, "<i4").tobytes()
            + np.full(n, TS, "<i8").tobytes() + np.ones(n, "<f8").tobytes())


@pytest.mark.parametrize("payload", [
    good_payload()[:-1],  # cut short
    good_payload() + b"\x00",  # longer than its head says
    b"\x01",  # no head
    with_table("not a list", []),
    with_table([["noise", "laeq_db", {"device_id": 5}]], [0]),  # a tag value not a string
    with_table([["noise", "laeq_db"]], [0]),  # no tags
    with_table([["noise", "laeq_db", {"device_id": "n-1"}]], [1]),  # no series 1
    with_table([["noise", "laeq_db", {"device_id": "n-1"}]], [-1]),
    struct.pack("<QI", 0, 3) + b"[[[",  # not JSON
], ids=["short", "long", "no-head", "table-not-list", "tag-not-text", "entry-shape",
        "index-past-table", "index-negative", "not-json"])
def test_an_undecodable_record_is_unplaceable_not_misplaced(payload: bytes) -> None:
    with pytest.raises(Unplaceable, match="undecodable spool record"):
        decode_record(2, payload)


def test_an_unknown_version_is_unplaceable() -> None:
    with pytest.raises(Unplaceable, match="version 3"):
        decode_record(3, good_payload())
