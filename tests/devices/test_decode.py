"""Table tests of `devices.decode`: every RejectReason, the accepted shapes, and which
problems refuse one reading rather than the whole message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.decode import PER_READING, BadReading, DecodeLimits, decode
from devices.errors import DecodeError, RejectReason
from devices.registry import Device, DeviceStatus, Registry

NOW_MS = 1_732_252_800_000
NOW_S = NOW_MS // 1000
LIMITS = DecodeLimits()
R = RejectReason


@pytest.fixture(scope="module")
def registry() -> Registry:
    devices = [
        Device("aq-1", "air_quality", "d1", 31.2, 121.4),
        Device("aq-m", "air_quality", "d1", 31.2, 121.4, status=DeviceStatus.MAINTENANCE),
        Device("aq-r", "air_quality", "d1", 31.2, 121.4, status=DeviceStatus.RETIRED),
        Device("mh-1", "manhole", "d1", 31.2, 121.4, gateway="gw-1"),
        Device("wl-1", "water_level", "d1", 31.2, 121.4, gateway="gw-1"),
        Device("wl-2", "water_level", "d1", 31.2, 121.4, gateway="gw-2"),
        Device("wl-x", "water_level", "d2", 31.2, 121.4, gateway="gw-1"),
    ]
    return Registry.build(load_catalogue(), devices)


def _decode_all(registry: Registry, topic: str, payload: object,
                limits: DecodeLimits = LIMITS) -> tuple[ReadingBatch, list[BadReading]]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(topic, raw, registry, NOW_MS, limits)


def _decode(registry: Registry, topic: str, payload: object) -> ReadingBatch:
    """The good readings of a message expected to have no bad one."""
    batch, bad = _decode_all(registry, topic, payload)
    assert bad == []
    return batch


def _rows(registry: Registry, batch) -> list[tuple[str, str, int, float]]:
    return [
        (registry.series(s).device_id, registry.series(s).metric, int(t), float(v))
        for s, t, v in zip(batch.slot, batch.ts_ms, batch.value, strict=True)
    ]


DATA = "city/d1/aq-1/data"
GW = "city/d1/gw-1/batch"

REJECTS = [
    # (id, topic, payload, reason)
    ("not-utf8", DATA, b"\xff\xfe{}", R.MALFORMED_JSON),
    ("truncated", DATA, b'{"m": {"pm25": 1', R.MALFORMED_JSON),
    ("empty-bytes", DATA, b"", R.MALFORMED_JSON),
    ("top-level-number", DATA, b"42", R.MALFORMED_JSON),
    ("top-level-string", DATA, b'"pm25"', R.MALFORMED_JSON),
    ("deep-nesting", DATA, b"[" * 30_000 + b"]" * 30_000, R.MALFORMED_JSON),
    ("huge-int-literal", DATA, b'{"m": {"pm25": ' + b"9" * 5000 + b"}}", R.MALFORMED_JSON),
    ("compact-no-m", DATA, {"ts": NOW_MS}, R.MALFORMED_JSON),
    ("compact-empty-m", DATA, {"m": {}}, R.MALFORMED_JSON),
    ("compact-m-list", DATA, {"m": [1, 2]}, R.MALFORMED_JSON),
    ("compact-unknown-key", DATA, {"m": {"pm25": 1}, "x": 1}, R.MALFORMED_JSON),
    ("compact-ts-string", DATA, {"ts": "now", "m": {"pm25": 1}}, R.MALFORMED_JSON),
    ("senml-empty-pack", DATA, [], R.MALFORMED_SENML),
    ("senml-record-not-object", DATA, [1], R.MALFORMED_SENML),
    ("senml-no-value", DATA, [{"n": "pm25"}], R.MALFORMED_SENML),
    ("senml-two-values", DATA, [{"n": "pm25", "v": 1, "vb": True}], R.MALFORMED_SENML),
    ("senml-bad-name", DATA, [{"n": "-pm25", "v": 1}], R.MALFORMED_SENML),
    ("senml-empty-name", DATA, [{"v": 1}], R.MALFORMED_SENML),
    ("senml-bn-number", DATA, [{"bn": 5, "n": "pm25", "v": 1}], R.MALFORMED_SENML),
    ("senml-t-string", DATA, [{"n": "pm25", "v": 1, "t": "0"}], R.MALFORMED_SENML),
    ("senml-vb-number", DATA, [{"n": "pm25", "vb": 1}], R.MALFORMED_SENML),
    ("senml-must-understand", DATA, [{"n": "pm25", "v": 1, "x_": 1}], R.MALFORMED_SENML),
    ("senml-urn-no-metric", DATA, [{"n": "urn:dev:aq-1", "v": 1}], R.MALFORMED_SENML),
    ("batch-not-pack", GW, {"m": {"level_m": 1}}, R.MALFORMED_SENML),
    ("batch-bare-name", GW, [{"n": "level_m", "v": 1}], R.MALFORMED_SENML),
    ("topic-too-short", "city/d1/data", {"m": {"pm25": 1}}, R.BAD_TOPIC),
    ("topic-wrong-root", "town/d1/aq-1/data", {"m": {"pm25": 1}}, R.BAD_TOPIC),
    ("topic-wrong-leaf", "city/d1/aq-1/status", {"m": {"pm25": 1}}, R.BAD_TOPIC),
    ("topic-empty-part", "city//aq-1/data", {"m": {"pm25": 1}}, R.BAD_TOPIC),
    ("topic-wildcard", "city/+/aq-1/data", {"m": {"pm25": 1}}, R.BAD_TOPIC),
    ("senml-other-device", DATA, [{"n": "urn:dev:aq-m:pm25", "v": 1}], R.BAD_TOPIC),
    ("unknown-device", "city/d1/nope/data", {"m": {"pm25": 1}}, R.UNKNOWN_DEVICE),
    ("batch-unknown-child", GW, [{"n": "urn:dev:nope:level_m", "v": 1}], R.UNKNOWN_DEVICE),
    ("batch-foreign-child", GW, [{"n": "urn:dev:wl-2:level_m", "v": 1}], R.UNKNOWN_DEVICE),
    ("maintenance", "city/d1/aq-m/data", {"m": {"pm25": 1}}, R.DEVICE_NOT_ACTIVE),
    ("retired", "city/d1/aq-r/data", {"m": {"pm25": 1}}, R.DEVICE_NOT_ACTIVE),
    ("district-mismatch", "city/d2/aq-1/data", {"m": {"pm25": 1}}, R.DISTRICT_MISMATCH),
    ("batch-child-district", GW, [{"n": "urn:dev:wl-x:level_m", "v": 1}], R.DISTRICT_MISMATCH),
    ("unknown-metric", DATA, {"m": {"level_m": 1}}, R.UNKNOWN_METRIC),
    ("senml-unknown-metric", DATA, [{"n": "pm99", "v": 1}], R.UNKNOWN_METRIC),
    ("senml-wrong-unit", DATA, [{"n": "pm25", "u": "mg/m3", "v": 1}], R.UNKNOWN_METRIC),
    ("senml-wrong-base-unit", DATA, [{"bu": "dB", "n": "pm25", "v": 1}], R.UNKNOWN_METRIC),
    ("string-value", DATA, {"m": {"pm25": "35.2"}}, R.NON_NUMERIC),
    ("null-value", DATA, {"m": {"pm25": None}}, R.NON_NUMERIC),
    ("object-value", DATA, {"m": {"pm25": {"v": 1}}}, R.NON_NUMERIC),
    ("list-value", DATA, {"m": {"pm25": [1]}}, R.NON_NUMERIC),
    ("senml-bool-v", DATA, [{"n": "pm25", "v": True}], R.NON_NUMERIC),
    ("senml-vs", DATA, [{"n": "pm25", "vs": "high"}], R.NON_NUMERIC),
    ("senml-vd", DATA, [{"n": "pm25", "vd": "AAE"}], R.NON_NUMERIC),
    ("senml-sum-only", DATA, [{"n": "pm25", "s": 3}], R.NON_NUMERIC),
    ("nan-literal", DATA, b'{"m": {"pm25": NaN}}', R.NOT_FINITE),
    ("infinity-literal", DATA, b'{"m": {"pm25": -Infinity}}', R.NOT_FINITE),
    ("nan-string", DATA, {"m": {"pm25": "NaN"}}, R.NOT_FINITE),
    ("infinity-string", DATA, {"m": {"pm25": "-Infinity"}}, R.NOT_FINITE),
    ("overflow-float", DATA, b'{"m": {"pm25": 1e400}}', R.NOT_FINITE),
    ("overflow-int", DATA, b'{"m": {"pm25": ' + b"9" * 400 + b"}}", R.NOT_FINITE),
    ("senml-nan-literal", DATA, b'[{"n": "pm25", "v": NaN}]', R.NOT_FINITE),
    ("senml-bt-overflow", DATA, b'[{"bt": 1e400, "n": "pm25", "v": 1}]', R.NOT_FINITE),
    ("senml-bv-overflow", DATA, b'[{"bv": 1.7e308, "n": "pm25", "v": 1.7e308}]', R.NOT_FINITE),
    ("compact-ts-overflow", DATA, b'{"ts": 1e400, "m": {"pm25": 1}}', R.NOT_FINITE),
    ("above-max", DATA, {"m": {"pm25": 1000.5}}, R.OUT_OF_RANGE),
    ("below-min", DATA, {"m": {"pm25": -0.1}}, R.OUT_OF_RANGE),
    ("senml-bv-pushes-out", DATA, [{"bv": 999, "n": "pm25", "v": 2}], R.OUT_OF_RANGE),
    ("too-old", DATA, {"ts": NOW_MS - LIMITS.max_age_ms - 1, "m": {"pm25": 1}}, R.TOO_OLD),
    ("senml-too-old", DATA, [{"n": "pm25", "v": 1, "t": -8 * 86400}], R.TOO_OLD),
    ("in-future", DATA, {"ts": NOW_MS + LIMITS.max_future_ms + 1, "m": {"pm25": 1}}, R.IN_FUTURE),
    ("senml-in-future", DATA, [{"bt": NOW_S + 301, "n": "pm25", "v": 1}], R.IN_FUTURE),
    ("too-large", DATA, b" " * (LIMITS.max_payload_bytes + 1), R.TOO_LARGE),
]


def test_every_reason_is_covered() -> None:
    assert {case[3] for case in REJECTS} == set(RejectReason)


# Single-reading messages: a message-level problem raises, a reading-level one refuses it.
READING_LEVEL = {c[0] for c in REJECTS if c[3] in PER_READING and not c[0].startswith("compact-ts")
                 and c[0] not in ("unknown-device", "maintenance", "retired", "district-mismatch",
                                  "too-old", "in-future")}


@pytest.mark.parametrize(
    ("case", "topic", "payload", "reason"), REJECTS, ids=[c[0] for c in REJECTS]
)
def test_rejects(
    registry: Registry, case: str, topic: str, payload: object, reason: RejectReason
) -> None:
    if case in READING_LEVEL:
        batch, bad = _decode_all(registry, topic, payload)
        assert len(batch) == 0 and [b.reason for b in bad] == [reason], bad
        assert bad[0].detail
        return
    with pytest.raises(DecodeError) as info:
        _decode_all(registry, topic, payload)
    assert info.value.reason is reason, info.value.detail


def test_bad_readings_are_refused_one_by_one_and_the_rest_kept(registry: Registry) -> None:
    payload = [{"n": "pm25", "v": 1}, {"n": "pm10", "v": "x"}, {"n": "pm99", "v": 1},
               {"n": "pm10", "v": 5000}, {"n": "co", "v": 2, "t": -8 * 86400}, {"n": "so2", "v": 4}]
    batch, bad = _decode_all(registry, DATA, payload)
    assert _rows(registry, batch) == [("aq-1", "pm25", NOW_MS, 1.0), ("aq-1", "so2", NOW_MS, 4.0)]
    assert [(b.device_id, b.metric, b.reason) for b in bad] == [
        ("aq-1", "pm10", R.NON_NUMERIC), ("aq-1", "pm99", R.UNKNOWN_METRIC),
        ("aq-1", "pm10", R.OUT_OF_RANGE), ("aq-1", "co", R.TOO_OLD),
    ]
    assert [b.fault for b in bad] == [None, None, (registry.slot("aq-1", "pm10"), NOW_MS, 5000.0),
                                      None]


def test_compact_mixed_message(registry: Registry) -> None:
    batch, bad = _decode_all(registry, DATA, {"m": {"pm25": 35, "bogus": 1, "pm10": 99999}})
    assert _rows(registry, batch) == [("aq-1", "pm25", NOW_MS, 35.0)]
    assert [(b.metric, b.reason, b.fault is not None) for b in bad] == [
        ("bogus", R.UNKNOWN_METRIC, False), ("pm10", R.OUT_OF_RANGE, True)]
    assert bad[1].detail == "pm10=99999.0 outside [0.0, 2000.0]"


def test_a_malformed_record_still_condemns_the_pack(registry: Registry) -> None:
    with pytest.raises(DecodeError) as info:
        _decode_all(registry, DATA, [{"n": "pm99", "v": 1}, {"n": "pm25", "vb": 1}])
    assert info.value.reason is R.MALFORMED_SENML


def test_a_gateway_batch_keeps_the_good_children(registry: Registry) -> None:
    pack = [{"n": "urn:dev:wl-1:level_m", "v": 99}, {"n": "urn:dev:wl-2:level_m", "v": 1},
            {"n": "urn:dev:mh-1:level_m", "v": 0.5}, {"n": "urn:dev:wl-2:level_m", "v": 2}]
    batch, bad = _decode_all(registry, GW, pack)
    assert _rows(registry, batch) == [("mh-1", "level_m", NOW_MS, 0.5)]
    assert [(b.device_id, b.reason) for b in bad] == [
        ("wl-1", R.OUT_OF_RANGE), ("wl-2", R.UNKNOWN_DEVICE), ("wl-2", R.UNKNOWN_DEVICE)]


def test_size_limit_is_configurable(registry: Registry) -> None:
    payload = json.dumps({"m": {"pm25": 1}}).encode()
    with pytest.raises(DecodeError) as info:
        decode(DATA, payload, registry, NOW_MS, DecodeLimits(max_payload_bytes=len(payload) - 1))
    assert info.value.reason is R.TOO_LARGE


def test_compact_with_ts(registry: Registry) -> None:
    batch = _decode(registry, DATA, {"ts": NOW_MS - 5000, "m": {"pm10": 61.0, "pm25": 35.2}})
    assert _rows(registry, batch) == [
        ("aq-1", "pm25", NOW_MS - 5000, 35.2),
        ("aq-1", "pm10", NOW_MS - 5000, 61.0),
    ]
    assert batch.slot.dtype == np.int64 and batch.value.dtype == np.float64


def test_compact_without_ts_uses_now(registry: Registry) -> None:
    batch = _decode(registry, DATA, {"m": {"co": 3}})
    assert _rows(registry, batch) == [("aq-1", "co", NOW_MS, 3.0)]


def test_compact_booleans_are_zero_and_one(registry: Registry) -> None:
    batch = _decode(registry, "city/d1/mh-1/data", {"m": {"cover_open": True, "level_m": 0}})
    assert sorted(_rows(registry, batch)) == [
        ("mh-1", "cover_open", NOW_MS, 1.0),
        ("mh-1", "level_m", NOW_MS, 0.0),
    ]


def test_limits_are_inclusive(registry: Registry) -> None:
    old = NOW_MS - LIMITS.max_age_ms
    new = NOW_MS + LIMITS.max_future_ms
    assert len(_decode(registry, DATA, {"ts": old, "m": {"pm25": 0}})) == 1
    assert len(_decode(registry, DATA, {"ts": new, "m": {"pm25": 1000}})) == 1


def test_senml_base_name_and_time(registry: Registry) -> None:
    pack = [
        {"bn": "urn:dev:aq-1:", "bt": NOW_S - 60, "bu": "ug/m3", "n": "pm25", "v": 35.2},
        {"n": "pm10", "v": 61, "t": 1},
        {"n": "co", "u": "mg/m3", "v": 0.5, "t": 1.5},
    ]
    batch = _decode(registry, DATA, pack)
    assert _rows(registry, batch) == [
        ("aq-1", "pm25", NOW_MS - 60_000, 35.2),
        ("aq-1", "pm10", NOW_MS - 59_000, 61.0),
        ("aq-1", "co", NOW_MS - 58_500, 0.5),
    ]


def test_senml_relative_time_and_base_value(registry: Registry) -> None:
    pack = [{"n": "pm25", "bv": 10, "v": 1, "t": -30}, {"n": "pm25", "v": 2}]
    batch = _decode(registry, DATA, pack)
    assert _rows(registry, batch) == [
        ("aq-1", "pm25", NOW_MS - 30_000, 11.0),
        ("aq-1", "pm25", NOW_MS, 12.0),
    ]


def test_senml_duplicate_keeps_last(registry: Registry) -> None:
    pack = [{"n": "pm25", "v": 1}, {"n": "pm25", "v": 2}, {"n": "pm25", "v": 3, "t": -1}]
    batch = _decode(registry, DATA, pack)
    assert _rows(registry, batch) == [
        ("aq-1", "pm25", NOW_MS - 1000, 3.0),
        ("aq-1", "pm25", NOW_MS, 2.0),
    ]


def test_gateway_batch(registry: Registry) -> None:
    pack = [
        {"bn": "urn:dev:wl-1:", "bt": NOW_S, "n": "level_m", "u": "m", "v": 2.5},
        {"bn": "urn:dev:mh-1:", "n": "cover_open", "vb": False, "t": -2},
        {"n": "level_m", "v": 1.25, "t": -2},
        {"bn": "urn:dev:wl-1:", "n": "level_m", "v": 2.0, "t": -60},
    ]
    batch = _decode(registry, GW, pack)
    rows = _rows(registry, batch)
    assert sorted(rows) == [
        ("mh-1", "cover_open", NOW_MS - 2000, 0.0),
        ("mh-1", "level_m", NOW_MS - 2000, 1.25),
        ("wl-1", "level_m", NOW_MS - 60_000, 2.0),
        ("wl-1", "level_m", NOW_MS, 2.5),
    ]
    keys = list(zip(batch.slot.tolist(), batch.ts_ms.tolist(), strict=True))
    assert keys == sorted(keys)
