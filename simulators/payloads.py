"""Wire encoding of simulated readings: one MQTT message per device per instant.

Compact JSON `{"ts": <epoch ms>, "m": {metric: value}}` is the default; a SenML
(RFC 8428) pack names the device in its base name and carries units. A
"reading" is one metric value, so a message carries as many readings as its
device type has metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from devices.catalogue import Catalogue
from simulators.city import City
from simulators.signals import values

_DECIMALS = 4
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class PayloadFormat(StrEnum):
    JSON = "json"
    SENML = "senml"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    readings: int


def topic(prefix: str, district: str, device_id: str) -> str:
    return f"{prefix}city/{district}/{device_id}/data"


def encode_json(ts_ms: int, metrics: dict[str, float]) -> bytes:
    return _dumps({"ts": ts_ms, "m": metrics}).encode()


def encode_senml(
    device_id: str, ts_ms: int, metrics: dict[str, float], units: dict[str, str]
) -> bytes:
    """A SenML pack: base name `urn:dev:<id>:` and base time (s) on the first record."""
    records: list[dict] = [{"n": n, "u": units[n], "v": v} for n, v in metrics.items()]
    if records:
        records[0] = {"bn": f"urn:dev:{device_id}:", "bt": ts_ms / 1000, **records[0]}
    return _dumps(records).encode()


def encode_messages(
    city: City,
    device_idx: np.ndarray,
    ts_ms: np.ndarray,
    fmt: PayloadFormat = PayloadFormat.JSON,
    prefix: str = "",
) -> list[Message]:
    """One message per (device_idx[i], ts_ms[i]), with that device's readings at that time."""
    return encode_readings(city, device_idx, ts_ms, values(city, device_idx, ts_ms), fmt, prefix)


def encode_readings(
    city: City,
    device_idx: np.ndarray,
    ts_ms: np.ndarray,
    readings: dict[str, np.ndarray],
    fmt: PayloadFormat = PayloadFormat.JSON,
    prefix: str = "",
) -> list[Message]:
    """One message per (device_idx[i], ts_ms[i]) carrying the given readings (by metric)."""
    columns = {m: np.round(a, _DECIMALS).tolist() for m, a in readings.items()}
    metric_names = {t: tuple(spec.metrics) for t, spec in city.catalogue.items()}
    units = _units(city.catalogue)
    messages = []
    for i, (d, ts) in enumerate(zip(device_idx.tolist(), ts_ms.tolist(), strict=True)):
        device = city.devices[d]
        names = metric_names[device.type]
        metrics = {n: columns[n][i] for n in names}
        if fmt is PayloadFormat.SENML:
            payload = encode_senml(device.id, ts, metrics, units[device.type])
        else:
            payload = encode_json(ts, metrics)
        messages.append(Message(topic(prefix, device.district, device.id), payload, len(names)))
    return messages


def _units(catalogue: Catalogue) -> dict[str, dict[str, str]]:
    return {t: {n: m.unit for n, m in spec.metrics.items()} for t, spec in catalogue.items()}
