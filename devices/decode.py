"""Turn one MQTT message (topic + payload bytes) into a `ReadingBatch`, or reject it.

Topics (already stripped of any deployment prefix):

- ``city/{district}/{device_id}/data``: readings of that device, as compact JSON
  ``{"ts": <epoch ms>, "m": {metric: value}}`` (``ts`` optional, ``now_ms`` otherwise)
  or as a SenML pack (see `devices.senml`).
- ``city/{district}/{gateway_id}/batch``: a gateway's SenML pack for its child devices;
  every record is named ``urn:dev:<device_id>:<metric>`` and every child must have
  ``gateway == gateway_id`` and live in the topic's district. The gateway itself need
  not be in the registry (the broker's ACL already ties the topic to it).

A problem with the message itself (topic, size, the topic's device on ``/data``, JSON or
SenML structure, the compact ``ts``) raises `DecodeError`: no reading of it is kept.
A problem with one reading (unknown metric or unit, non-numeric, not finite, out of range,
its own time too old or in the future, a gateway's child that may not publish here) refuses
that reading alone as a `BadReading`; the message's other readings are kept. Checks run
cheapest first: topic, size, the topic's device (on ``/data``), JSON, then each reading.

An out-of-range reading of a known series is a sensor fault, not just bad input: its
`BadReading.fault` keeps (slot, ts_ms, value), so ingest can hand it to the rule engine
(which raises a ``device`` alert for it) without ever storing it as a measurement.

Value rules: JSON numbers are accepted; in compact form ``true``/``false`` are
accepted as 1/0 (switch-like metrics such as ``cover_open``, matching SenML ``vb``);
strings (even numeric ones), null, arrays and objects are `NON_NUMERIC`, except the
words NaN/Infinity (and JSON's NaN/Infinity literals, and numbers overflowing to
infinity) which are `NOT_FINITE`. No exception other than `DecodeError` escapes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from devices.batch import ReadingBatch
from devices.catalogue import Metric
from devices.errors import DecodeError, RejectReason
from devices.registry import Device, DeviceStatus, Registry
from devices.senml import senml_readings, to_float

_NOT_FINITE_WORDS = frozenset({"nan", "inf", "infinity"})
_COMPACT_KEYS = frozenset({"ts", "m"})


@dataclass(frozen=True)
class DecodeLimits:
    max_payload_bytes: int = 65536
    max_age_ms: int = 7 * 24 * 3600 * 1000
    max_future_ms: int = 300_000


Rows = dict[tuple[int, int], float]  # (slot, ts_ms) -> value
Fault = tuple[int, int, float]  # (slot, ts_ms, value) of an out-of-range reading
# What one reading can be refused for while the rest of its message is kept.
PER_READING = frozenset({
    RejectReason.UNKNOWN_DEVICE, RejectReason.DEVICE_NOT_ACTIVE, RejectReason.DISTRICT_MISMATCH,
    RejectReason.UNKNOWN_METRIC, RejectReason.NON_NUMERIC, RejectReason.NOT_FINITE,
    RejectReason.OUT_OF_RANGE, RejectReason.TOO_OLD, RejectReason.IN_FUTURE,
})


@dataclass(frozen=True)
class BadReading:
    """One refused reading of an otherwise decoded message."""

    device_id: str
    metric: str
    reason: RejectReason
    detail: str
    fault: Fault | None = None  # set for an out-of-range reading of a known series


@dataclass
class Decoded:
    """A message's good readings (unsorted) and its refused ones, in message order."""

    rows: Rows
    bad: list[BadReading] = field(default_factory=list)


def decode(
    topic: str, payload: bytes, registry: Registry, now_ms: int, limits: DecodeLimits
) -> tuple[ReadingBatch, list[BadReading]]:
    """Decode and validate one message; rows are sorted by (slot, ts_ms)."""
    decoded = decode_rows(topic, payload, registry, now_ms, limits)
    return _to_batch(decoded.rows), decoded.bad


def decode_rows(
    topic: str, payload: bytes, registry: Registry, now_ms: int, limits: DecodeLimits
) -> Decoded:
    """As `decode`, but the readings as a dict, unsorted: no arrays per message (ingest's
    hot path builds them once per batch)."""
    district, sender_id, kind = _parse_topic(topic)
    if len(payload) > limits.max_payload_bytes:
        raise DecodeError(
            RejectReason.TOO_LARGE,
            f"{len(payload)} bytes > {limits.max_payload_bytes}",
            sender_id,
        )
    checker = _Checker(registry, district, sender_id, kind, now_ms, limits)
    if kind == "data":
        checker.device(sender_id)
    doc = _parse_json(payload, sender_id)
    if kind == "batch" and not isinstance(doc, list):
        raise DecodeError(RejectReason.MALFORMED_SENML, "a batch must be a SenML pack", sender_id)
    if isinstance(doc, list):
        rows = senml_readings(doc, sender_id if kind == "data" else None, now_ms, checker)
    elif isinstance(doc, dict):
        rows = _compact_readings(doc, sender_id, now_ms, checker)
    else:
        raise DecodeError(
            RejectReason.MALFORMED_JSON, "top level must be an object or array", sender_id
        )
    return Decoded(rows, checker.bad)


def _parse_topic(topic: str) -> tuple[str, str, str]:
    parts = topic.split("/")
    if (
        len(parts) != 4
        or parts[0] != "city"
        or parts[3] not in ("data", "batch")
        or not parts[1]
        or not parts[2]
        or "+" in topic
        or "#" in topic
        or "\x00" in topic
    ):
        raise DecodeError(RejectReason.BAD_TOPIC, f"unexpected topic {topic[:200]!r}")
    return parts[1], parts[2], parts[3]


# JSON's NaN/Infinity literals become floats here and are refused by the value checks, so a
# sensor sending NaN for one metric loses that reading only. One decoder, not one per message.
_JSON = json.JSONDecoder()


def _parse_json(payload: bytes, device_id: str) -> object:
    try:
        return _JSON.decode(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError(RejectReason.MALFORMED_JSON, f"not UTF-8: {exc}", device_id) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digit limit, nesting
        raise DecodeError(RejectReason.MALFORMED_JSON, str(exc)[:200], device_id) from None


def _compact_readings(
    doc: dict, device_id: str, now_ms: int, checker: _Checker
) -> dict[tuple[int, int], float]:
    extra = doc.keys() - _COMPACT_KEYS
    if extra:
        raise DecodeError(
            RejectReason.MALFORMED_JSON, f"unknown keys {sorted(extra)[:5]}", device_id
        )
    metrics = doc.get("m")
    if not isinstance(metrics, dict) or not metrics:
        raise DecodeError(RejectReason.MALFORMED_JSON, '"m" must be a non-empty object', device_id)
    ts = doc.get("ts", now_ms)
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise DecodeError(RejectReason.MALFORMED_JSON, '"ts" must be epoch ms', device_id)
    ts_ms = checker.time_ms(to_float(ts), device_id)
    rows: dict[tuple[int, int], float] = {}
    for metric, raw in metrics.items():
        try:
            value = 1.0 if raw is True else 0.0 if raw is False else checker.number(raw, device_id)
            checker.add(rows, device_id, metric, None, ts_ms, value)
        except DecodeError as exc:
            checker.refuse(exc, device_id, metric)
    return rows


class _Checker:
    """Registry, range and time checks shared by the compact and SenML paths."""

    def __init__(
        self,
        registry: Registry,
        district: str,
        sender_id: str,
        kind: str,
        now_ms: int,
        limits: DecodeLimits,
    ) -> None:
        self.registry = registry
        self.district = district
        self.sender_id = sender_id
        self.kind = kind
        self.now_ms = now_ms
        self.limits = limits
        self._checked: dict[str, dict[str, Metric]] = {}
        self._series: dict[tuple[str, str, str | None], tuple[Metric, int]] = {}
        self.bad: list[BadReading] = []

    def refuse(self, exc: DecodeError, device_id: str, metric: str) -> None:
        """Keep `exc` as one refused reading, or re-raise it if it condemns the message."""
        if exc.reason not in PER_READING:
            raise exc
        self.bad.append(BadReading(exc.device_id or device_id, metric, exc.reason, exc.detail))

    def device(self, device_id: str) -> dict[str, Metric]:
        """The device's metrics, after checking it may publish here."""
        metrics = self._checked.get(device_id)
        if metrics is not None:
            return metrics
        device = self.registry.get(device_id)
        if device is None:
            raise DecodeError(RejectReason.UNKNOWN_DEVICE, f"no device {device_id!r}", device_id)
        self._check_device(device)
        metrics = self.registry.catalogue[device.type].metrics
        self._checked[device_id] = metrics
        return metrics

    def _check_device(self, device: Device) -> None:
        if self.kind == "batch" and device.gateway != self.sender_id:
            raise DecodeError(
                RejectReason.UNKNOWN_DEVICE,
                f"device {device.id!r} is not behind gateway {self.sender_id!r}",
                device.id,
            )
        if device.status != DeviceStatus.ACTIVE:
            raise DecodeError(
                RejectReason.DEVICE_NOT_ACTIVE, f"device is {device.status.value}", device.id
            )
        if device.district != self.district:
            raise DecodeError(
                RejectReason.DISTRICT_MISMATCH,
                f"topic district {self.district!r}, device district {device.district!r}",
                device.id,
            )

    def add(
        self, rows: Rows, device_id: str, metric: str, unit: str | None, ts_ms: int, value: float
    ) -> None:
        """Put the reading in `rows`, or, out of its metric's range, in `bad` as a fault."""
        known = self._series.get((device_id, metric, unit))
        if known is None:
            known = self._series[(device_id, metric, unit)] = self._known(device_id, metric, unit)
        spec, slot = known
        if spec.min <= value <= spec.max:
            rows[(slot, ts_ms)] = value
            return
        detail = f"{metric}={value} outside [{spec.min}, {spec.max}]"
        self.bad.append(BadReading(device_id, metric, RejectReason.OUT_OF_RANGE, detail,
                                   (slot, ts_ms, value)))

    def _known(self, device_id: str, metric: str, unit: str | None) -> tuple[Metric, int]:
        """The metric's spec and slot, once the device may publish it in `unit`."""
        spec = self.device(device_id).get(metric)
        if spec is None or (unit is not None and unit != spec.unit):
            shown = metric if unit is None else f"{metric} in {unit!r}"
            raise DecodeError(RejectReason.UNKNOWN_METRIC, f"unknown metric {shown}", device_id)
        slot = self.registry.slot(device_id, metric)
        assert slot is not None  # every metric of a registered device has a slot
        return spec, slot

    def number(self, raw: object, device_id: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            if isinstance(raw, str) and raw.strip().lstrip("+-").lower() in _NOT_FINITE_WORDS:
                raise DecodeError(RejectReason.NOT_FINITE, f"value {raw!r}", device_id)
            raise DecodeError(
                RejectReason.NON_NUMERIC, f"value of type {type(raw).__name__}", device_id
            )
        value = to_float(raw)
        if not math.isfinite(value):
            raise DecodeError(RejectReason.NOT_FINITE, "value is not finite", device_id)
        return value

    def time_ms(self, ts_ms: float, device_id: str) -> int:
        if not math.isfinite(ts_ms):
            raise DecodeError(RejectReason.NOT_FINITE, "time is not finite", device_id)
        if ts_ms < self.now_ms - self.limits.max_age_ms:
            raise DecodeError(
                RejectReason.TOO_OLD, f"ts {ts_ms:.0f} older than the limit", device_id
            )
        if ts_ms > self.now_ms + self.limits.max_future_ms:
            raise DecodeError(RejectReason.IN_FUTURE, f"ts {ts_ms:.0f} in the future", device_id)
        return round(ts_ms)


def _to_batch(rows: Rows) -> ReadingBatch:
    keys = sorted(rows)
    return ReadingBatch(
        np.fromiter((k[0] for k in keys), dtype=np.int64, count=len(keys)),
        np.fromiter((k[1] for k in keys), dtype=np.int64, count=len(keys)),
        np.fromiter((rows[k] for k in keys), dtype=np.float64, count=len(keys)),
    )
