"""Fuzz `decode`: for any bytes, it returns a valid batch or raises DecodeError, nothing else."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.catalogue import load_catalogue
from devices.decode import PER_READING, DecodeLimits, decode
from devices.errors import DecodeError
from devices.registry import Device, DeviceStatus, Registry

NOW_MS = 1_732_252_800_000
REGISTRY = Registry.build(
    load_catalogue(),
    [
        Device("aq-1", "air_quality", "d1", 31.2, 121.4),
        Device("aq-m", "air_quality", "d1", 31.2, 121.4, status=DeviceStatus.MAINTENANCE),
        Device("wl-1", "water_level", "d1", 31.2, 121.4, gateway="gw-1"),
        Device("mh-1", "manhole", "d1", 31.2, 121.4, gateway="gw-1"),
    ],
)
TOPICS = st.sampled_from(
    ["city/d1/aq-1/data", "city/d1/gw-1/batch", "city/d1/aq-m/data", "city/d2/wl-1/data", "x"]
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["NaN", "Infinity", "pm25", "level_m", "urn:dev:aq-1:pm25", "1.5", ""]),
    st.text(max_size=8),
)
keys = st.one_of(
    st.sampled_from(["m", "ts", "bn", "bt", "bu", "bv", "n", "u", "v", "vb", "vs", "t", "s"]),
    st.sampled_from(["pm25", "level_m", "cover_open", "urn:dev:wl-1:", "x_"]),
    st.text(max_size=5),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=30,
)
senml_records = st.fixed_dictionaries(
    {},
    optional={
        "bn": st.sampled_from(["", "urn:dev:aq-1:", "urn:dev:wl-1:", "urn:dev:mh-1:", "urn:"]),
        "bt": st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False)),
        "n": st.sampled_from(["pm25", "pm10", "level_m", "cover_open", "bad name", ""]),
        "v": scalars,
        "vb": st.booleans(),
        "bv": st.floats(allow_nan=False),
        "t": st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=False)),
        "u": st.sampled_from(["ug/m3", "m", "/", "dB"]),
    },
)


def _check(topic: str, payload: bytes) -> None:
    try:
        batch, bad = decode(topic, payload, REGISTRY, NOW_MS, DecodeLimits())
    except DecodeError as exc:
        assert exc.reason.value and isinstance(exc.detail, str)
        return
    assert all(b.reason in PER_READING and b.detail for b in bad)
    assert np.isfinite(batch.value).all()
    assert ((batch.slot >= 0) & (batch.slot < REGISTRY.n_series)).all()
    keys = list(zip(batch.slot.tolist(), batch.ts_ms.tolist(), strict=True))
    assert keys == sorted(set(keys))


@FUZZ
@given(TOPICS, st.binary(max_size=300))
def test_random_bytes(topic: str, payload: bytes) -> None:
    _check(topic, payload)


@FUZZ
@given(TOPICS, documents)
def test_random_json(topic: str, doc: object) -> None:
    _check(topic, json.dumps(doc).encode())


@FUZZ
@given(TOPICS, st.lists(senml_records, max_size=6))
def test_near_valid_senml(topic: str, pack: list) -> None:
    _check(topic, json.dumps(pack).encode())


@FUZZ
@given(st.dictionaries(st.sampled_from(["pm25", "pm10", "co", "x"]), scalars, max_size=4))
def test_near_valid_compact(metrics: dict) -> None:
    _check("city/d1/aq-1/data", json.dumps({"ts": NOW_MS, "m": metrics}).encode())


@FUZZ
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_json_with_random_bytes_inside(prefix: bytes, suffix: bytes) -> None:
    _check("city/d1/aq-1/data", prefix + b'{"m": {"pm25": 1}}' + suffix)
