"""Payload encoding: compact JSON and SenML packs round-trip through `json`."""

from __future__ import annotations

import json

import numpy as np

from simulators.city import build_city
from simulators.payloads import (
    PayloadFormat,
    encode_json,
    encode_messages,
    encode_senml,
    topic,
)
from simulators.signals import values

TS_MS = 1732252800123
CITY = build_city(40, seed=4)


def test_compact_json_round_trips() -> None:
    payload = encode_json(TS_MS, {"pm25": 35.2, "pm10": 61.0})
    assert json.loads(payload) == {"ts": TS_MS, "m": {"pm25": 35.2, "pm10": 61.0}}
    assert b" " not in payload


def test_senml_pack_names_the_device_and_units() -> None:
    pack = json.loads(
        encode_senml("aq-0001", TS_MS, {"pm25": 35.2, "co": 0.9}, {"pm25": "ug/m3", "co": "mg/m3"})
    )
    assert pack == [
        {"bn": "urn:dev:aq-0001:", "bt": TS_MS / 1000, "n": "pm25", "u": "ug/m3", "v": 35.2},
        {"n": "co", "u": "mg/m3", "v": 0.9},
    ]


def test_topic_carries_prefix_district_and_device() -> None:
    assert topic("t1/", "haidian", "aq-0001") == "t1/city/haidian/aq-0001/data"
    assert topic("", "haidian", "aq-0001") == "city/haidian/aq-0001/data"


def test_messages_carry_every_metric_of_their_device() -> None:
    dev = np.arange(len(CITY.devices))
    ts = np.full(len(dev), TS_MS)
    messages = encode_messages(CITY, dev, ts, PayloadFormat.JSON, "p/")
    expected = values(CITY, dev, ts)
    for i, msg in zip(dev, messages, strict=True):
        device = CITY.devices[i]
        assert msg.topic == f"p/city/{device.district}/{device.id}/data"
        body = json.loads(msg.payload)
        metrics = CITY.catalogue[device.type].metrics
        assert body["ts"] == TS_MS and set(body["m"]) == set(metrics)
        assert msg.readings == len(metrics)
        for name, value in body["m"].items():
            assert value == round(float(expected[name][i]), 4)


def test_senml_messages_resolve_to_the_same_readings() -> None:
    dev = np.arange(len(CITY.devices))
    ts = np.full(len(dev), TS_MS)
    as_json = encode_messages(CITY, dev, ts, PayloadFormat.JSON)
    as_senml = encode_messages(CITY, dev, ts, PayloadFormat.SENML)
    for i, (j, s) in enumerate(zip(as_json, as_senml, strict=True)):
        pack = json.loads(s.payload)
        base = pack[0]["bn"]
        assert base == f"urn:dev:{CITY.devices[i].id}:" and pack[0]["bt"] == TS_MS / 1000
        units = {n: m.unit for n, m in CITY.catalogue[CITY.devices[i].type].metrics.items()}
        assert {r["n"]: r["u"] for r in pack} == units
        assert {r["n"]: r["v"] for r in pack} == json.loads(j.payload)["m"]
        assert s.readings == len(pack)
