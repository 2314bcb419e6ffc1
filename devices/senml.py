"""Resolve a SenML (RFC 8428) JSON pack into readings.

Resolution follows RFC 8428 section 4.6: base fields (``bn``, ``bt``, ``bu``, ``bv``)
apply to their record and every later one until overridden; name = bn + n,
time = bt + t (seconds, float; resolved times below 2**28 are relative to now),
value = bv + v, unit = u else bu. Exactly one of ``v``/``vs``/``vb``/``vd`` per
record; ``vb`` becomes 1/0 (``bv`` does not apply to it); string, data and
sum-only records are refused as `NON_NUMERIC`. Labels ending in ``_`` are
must-understand and refused; other unknown labels are ignored, as the RFC allows.

Names resolve to ``urn:dev:<device_id>:<metric>`` (the device id is everything
between ``urn:dev:`` and the last colon) or, on a device's own ``/data`` topic, to
the bare metric name. A unit, when given, must equal the catalogue's unit.
Two records with the same resolved name and time: the last one wins. A record the checker
refuses alone (see `devices.decode`) is skipped; a malformed pack is refused whole.
"""

from __future__ import annotations

import math
import re
from typing import NoReturn, Protocol, TypeGuard

from devices.catalogue import Metric
from devices.errors import DecodeError, RejectReason

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*\Z")
_RELATIVE_LIMIT_S = 2**28
_VALUE_KEYS = ("v", "vs", "vb", "vd")
_COMMON_LABELS = frozenset({"bn", "bt", "bu", "bv", "bver", "n", "t", "u", "v", "vs", "vb", "vd"})
_URN = "urn:dev:"
_EXACT_INT = 2**53


class ReadingChecker(Protocol):
    sender_id: str

    def device(self, device_id: str) -> dict[str, Metric]: ...

    def add(
        self, rows: dict[tuple[int, int], float], device_id: str, metric: str,
        unit: str | None, ts_ms: int, value: float,
    ) -> None: ...

    def refuse(self, exc: DecodeError, device_id: str, metric: str) -> None: ...

    def number(self, raw: object, device_id: str) -> float: ...

    def time_ms(self, ts_ms: float, device_id: str) -> int: ...


def to_float(raw: int | float) -> float:
    """float(raw), with integers too large for a float becoming +-inf instead of raising."""
    try:
        return float(raw)
    except OverflowError:
        return math.inf if raw > 0 else -math.inf


def senml_readings(
    pack: list, topic_device: str | None, now_ms: int, checker: ReadingChecker
) -> dict[tuple[int, int], float]:
    """Good readings keyed by (slot, ts_ms) (refused ones go to `checker.refuse`);
    `topic_device` is None on a gateway's batch topic."""
    if not pack:
        _malformed(checker, "empty SenML pack")
    bn, bu, bt, bv = "", None, 0.0, 0.0
    rows: dict[tuple[int, int], float] = {}
    names: dict[str, tuple[str, str]] = {}  # resolved name -> (device, metric), checked once
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            _malformed(checker, f"record {i} is not an object")
        # Labels are only looked up when present: most records carry just n/t/v.
        if not rec.keys() <= _COMMON_LABELS and any(key.endswith("_") for key in rec):
            _malformed(checker, f"record {i} has a must-understand label")
        if "bn" in rec:
            bn = _string(rec, "bn", bn, i, checker) or ""
        if "bu" in rec:
            bu = _string(rec, "bu", bu, i, checker)
        if "bt" in rec:
            bt = _number(rec, "bt", bt, i, checker)
        if "bv" in rec:
            bv = _number(rec, "bv", bv, i, checker)
        if "bver" in rec:
            _number(rec, "bver", 10.0, i, checker)
        name = bn + (_string(rec, "n", "", i, checker) or "") if "n" in rec else bn
        split = names.get(name)
        if split is None:
            split = _split_name(name, topic_device, checker)
        device_id, metric = split
        try:
            if name not in names:
                checker.device(device_id)  # once per name: it cannot fail later in the pack
                names[name] = split
            # Plain numbers take the short way; anything else gets the full checks (and errors).
            raw = rec.get("v")
            if _plain_number(raw) and "vs" not in rec and "vb" not in rec and "vd" not in rec:
                value = bv + raw
                if not math.isfinite(value):
                    value = _value(rec, bv, i, device_id, checker)
            else:
                value = _value(rec, bv, i, device_id, checker)
            t = rec.get("t", 0.0)
            t_s = bt + t if _plain_number(t) else bt + _number(rec, "t", 0.0, i, checker)
            ts_ms = now_ms + t_s * 1000.0 if t_s < _RELATIVE_LIMIT_S else t_s * 1000.0
            ts_ms = checker.time_ms(ts_ms, device_id)
            unit = _string(rec, "u", bu, i, checker) if "u" in rec else bu
            checker.add(rows, device_id, metric, unit, ts_ms, value)
        except DecodeError as exc:
            checker.refuse(exc, device_id, metric)
    return rows


def _plain_number(raw: object) -> TypeGuard[float | int]:
    """A float, or an int a float holds exactly (so `x + raw` equals `x + float(raw)`)."""
    kind = type(raw)
    return kind is float or (kind is int and -_EXACT_INT < raw < _EXACT_INT)  # type: ignore[operator]


def _split_name(name: str, topic_device: str | None, checker: ReadingChecker) -> tuple[str, str]:
    if not _NAME.match(name):
        _malformed(checker, f"invalid name {name[:100]!r}")
    if name.startswith(_URN):
        device_id, _, metric = name[len(_URN) :].rpartition(":")
        if not device_id or not metric:
            _malformed(checker, f"name {name[:100]!r} is not urn:dev:<device>:<metric>")
        if topic_device is not None and device_id != topic_device:
            raise DecodeError(
                RejectReason.BAD_TOPIC,
                f"record for {device_id!r} on the topic of {topic_device!r}",
                topic_device,
            )
        return device_id, metric
    if topic_device is None:
        _malformed(checker, f"batch record name {name[:100]!r} is not urn:dev:<device>:<metric>")
    return topic_device, name


def _value(rec: dict, bv: float, i: int, device_id: str, checker: ReadingChecker) -> float:
    if "v" in rec and len(rec.keys() & _VALUE_KEYS) == 1:  # the common case
        value = bv + checker.number(rec["v"], device_id)
        if not math.isfinite(value):
            raise DecodeError(RejectReason.NOT_FINITE, "bv + v is not finite", device_id)
        return value
    present = [key for key in _VALUE_KEYS if key in rec]
    if not present and "s" in rec:
        raise DecodeError(RejectReason.NON_NUMERIC, "sum-only records are not supported", device_id)
    if len(present) != 1:
        _malformed(checker, f"record {i} needs exactly one of v, vs, vb, vd")
    key = present[0]
    raw = rec[key]
    if key == "vb":
        if not isinstance(raw, bool):
            _malformed(checker, f"record {i}: vb must be a boolean")
        return 1.0 if raw else 0.0
    if key != "v":
        raise DecodeError(RejectReason.NON_NUMERIC, f"{key} values are not supported", device_id)
    value = bv + checker.number(raw, device_id)
    if not math.isfinite(value):
        raise DecodeError(RejectReason.NOT_FINITE, "bv + v is not finite", device_id)
    return value


def _string(
    rec: dict, key: str, default: str | None, i: int, checker: ReadingChecker
) -> str | None:
    raw = rec.get(key, default)
    if raw is not default and not isinstance(raw, str):
        _malformed(checker, f"record {i}: {key} must be a string")
    return raw


def _number(rec: dict, key: str, default: float, i: int, checker: ReadingChecker) -> float:
    raw = rec.get(key, default)
    if raw is default:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        _malformed(checker, f"record {i}: {key} must be a number")
    return to_float(raw)


def _malformed(checker: ReadingChecker, detail: str) -> NoReturn:
    raise DecodeError(RejectReason.MALFORMED_SENML, detail, checker.sender_id)
