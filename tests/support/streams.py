"""What the resilience and hostile tests send and read back: device readings, hostile
messages, a paced QoS 1 publisher that counts the broker's acknowledgements, and the stored
points."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.timeseries.client import InfluxClient
from ingest.timeseries.influxql import quote_ident
from simulators.city import City
from simulators.signals import values
from urbanwatch.services.mosquitto import MAX_PACKET_BYTES

Point = tuple[str, int]  # (device_id, ts_ms): one series' point at one time
YEAR_2100_MS = 4_102_444_800_000


@dataclass(frozen=True)
class Outgoing:
    topic: str  # without the test's prefix
    payload: bytes


@dataclass(frozen=True)
class Reading:
    device_id: str
    metric: str
    ts_ms: int
    value: float


def readings(city: City, per_device: int, t0_ms: int, step_ms: int = 1000) -> list[Reading]:
    """`per_device` readings of every device (one metric each, the simulator's values),
    interleaved across devices; every (device, ts) is distinct."""
    n = len(city.devices)
    device_idx = np.tile(np.arange(n), per_device)
    ts = t0_ms + np.repeat(np.arange(per_device), n) * step_ms
    columns = values(city, device_idx, ts)
    first_metric = {t: next(iter(spec.metrics)) for t, spec in city.catalogue.items()}
    out = []
    for i, (d, t) in enumerate(zip(device_idx.tolist(), ts.tolist(), strict=True)):
        device = city.devices[d]
        metric = first_metric[device.type]
        out.append(Reading(device.id, metric, t, round(float(columns[metric][i]), 4)))
    return out


def as_json(city: City, reading: Reading) -> Outgoing:
    district = _district(city, reading.device_id)
    body = {"ts": reading.ts_ms, "m": {reading.metric: reading.value}}
    return Outgoing(f"city/{district}/{reading.device_id}/data", json.dumps(body).encode())


def as_duplicated_senml(city: City, reading: Reading, shadow: float) -> Outgoing:
    """A SenML pack naming the same reading twice: `shadow` first, the real value last
    (RFC 8428 leaves it to the receiver; the decoder keeps the last one)."""
    district = _district(city, reading.device_id)
    pack = [
        {"bn": f"urn:dev:{reading.device_id}:", "bt": reading.ts_ms / 1000,
         "n": reading.metric, "v": shadow},
        {"n": reading.metric, "v": reading.value},
    ]
    return Outgoing(f"city/{district}/{reading.device_id}/data", json.dumps(pack).encode())


def hostile(city: City, n: int, now_ms: int, rng: Random, n_huge: int = 40
            ) -> list[tuple[Outgoing, str]]:
    """`n` messages that must each be rejected, with the reason expected on their dead
    letter; `n_huge` of them are larger than ingest takes (though the managed broker still
    passes them: it refuses packets over `MAX_PACKET_BYTES` itself, a sender's disconnect)."""
    makers = [
        _random_bytes, _truncated_json, _deeply_nested, _huge_float, _huge_int, _huge_value,
        _string_value, _null_value, _string_ts, _nan_string, _inf_string, _unknown_device,
        _district_mismatch, _in_1970, _in_2100,
    ]
    out = [(_too_large(city, rng, now_ms)) for _ in range(n_huge)]
    out += [rng.choice(makers)(city, rng, now_ms) for _ in range(n - n_huge)]
    rng.shuffle(out)
    return out


def _district(city: City, device_id: str) -> str:
    return next(d.district for d in city.devices if d.id == device_id)


def _device(city: City, rng: Random) -> tuple[str, str, str]:
    device = rng.choice(city.devices)
    return device.id, device.district, next(iter(city.catalogue[device.type].metrics))


def _json_on_device(city: City, rng: Random, body: str, reason: str) -> tuple[Outgoing, str]:
    device_id, district, _ = _device(city, rng)
    return Outgoing(f"city/{district}/{device_id}/data", body.encode()), reason


def _metric_json(city: City, rng: Random, now_ms: int, value: str, reason: str,
                 ts: str | None = None) -> tuple[Outgoing, str]:
    device_id, district, metric = _device(city, rng)
    body = f'{{"ts": {ts or now_ms - rng.randrange(60_000)}, "m": {{"{metric}": {value}}}}}'
    return Outgoing(f"city/{district}/{device_id}/data", body.encode()), reason


def _random_bytes(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    device_id, district, _ = _device(city, rng)
    body = b"\xff" + rng.randbytes(rng.randrange(1, 300))  # 0xff never starts UTF-8
    return Outgoing(f"city/{district}/{device_id}/data", body), "malformed_json"


def _truncated_json(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    device_id, district, metric = _device(city, rng)
    whole = json.dumps({"ts": now_ms, "m": {metric: 1.5}})
    body = whole[:rng.randrange(1, len(whole))]  # no proper prefix of an object is JSON
    return Outgoing(f"city/{district}/{device_id}/data", body.encode()), "malformed_json"


def _deeply_nested(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    depth = rng.randrange(5_000, 30_000)
    return _json_on_device(city, rng, "[" * depth + "]" * depth, "malformed_json")


def _huge_float(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, "1e999", "not_finite")


def _huge_int(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, "9" * 5000, "malformed_json")  # > int digit limit


def _huge_value(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, "1e300", "out_of_range")


def _string_value(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, '"12.5"', "non_numeric")


def _null_value(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, rng.choice(["null", "[1]", '{"v": 1}']), "non_numeric")


def _string_ts(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, "1", "malformed_json", ts='"yesterday"')


def _nan_string(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, rng.choice(['"NaN"', '"nan"', "NaN"]), "not_finite")


def _inf_string(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    word = rng.choice(['"Infinity"', '"-inf"', '"+Inf"', "-Infinity"])
    return _metric_json(city, rng, now_ms, word, "not_finite")


def _unknown_device(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    _, district, metric = _device(city, rng)
    body = json.dumps({"ts": now_ms, "m": {metric: 1.0}}).encode()
    ghost = f"ghost-{rng.randrange(10_000)}"
    return Outgoing(f"city/{district}/{ghost}/data", body), "unknown_device"


def _district_mismatch(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    device_id, district, metric = _device(city, rng)
    other = next(d.id for d in city.districts if d.id != district)
    body = json.dumps({"ts": now_ms, "m": {metric: 1.0}}).encode()
    return Outgoing(f"city/{other}/{device_id}/data", body), "district_mismatch"


def _in_1970(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    return _metric_json(city, rng, now_ms, "1.0", "too_old", ts=str(rng.randrange(0, 10**9)))


def _in_2100(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    ts = str(YEAR_2100_MS + rng.randrange(10**9))
    return _metric_json(city, rng, now_ms, "1.0", "in_future", ts=ts)


def _too_large(city: City, rng: Random, now_ms: int) -> tuple[Outgoing, str]:
    device_id, district, metric = _device(city, rng)
    padding = "x" * (MAX_PACKET_BYTES // 2)  # over ingest's 64 KiB, under the broker's limit
    body = json.dumps({"ts": now_ms, "m": {metric: 1.0}, "pad": padding}).encode()
    return Outgoing(f"city/{district}/{device_id}/data", body), "too_large"


class Stream:
    """Publishes `messages` at QoS 1 from its own thread (paced to `rate` per second, or
    as fast as the in-flight window allows) and counts the broker's acknowledgements.

    paho keeps every unacknowledged message and sends it again after a reconnect, so a
    broker restart in the middle loses nothing on this side. `stop()` ends the publishing
    early: `sent` messages (the first ones) were published.
    """

    def __init__(self, host: str, port: int, prefix: str, messages: Sequence[Outgoing],
                 *, rate: float | None = None, client_id: str = "",
                 login: tuple[str, str] | None = None) -> None:
        self.prefix, self.messages, self.rate = prefix, messages, rate
        self.sent = self.acked = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=MQTTProtocolVersion.MQTTv5)
        if login is not None:
            self._client.username_pw_set(*login)
        self._client.max_inflight_messages_set(500)
        self._client.reconnect_delay_set(1, 2)
        self._client.on_publish = self._on_publish
        self._client.connect(host, port)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._publish_all, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        """Every message published was acknowledged (all of them, unless stopped early)."""
        return self.acked == (self.sent if self._stopping.is_set() else len(self.messages))

    def stop(self) -> None:
        """Publish no more; returns once the publishing thread has ended."""
        self._stopping.set()
        self._thread.join()

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()
        self._client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)

    def _publish_all(self) -> None:
        started = time.monotonic()
        for i, message in enumerate(self.messages):
            if self.rate is not None:
                ahead_s = i / self.rate - (time.monotonic() - started)
                if ahead_s > 0 and self._stopping.wait(ahead_s):
                    return
            if self._stopping.is_set():
                return
            while self.sent - self.acked > 5_000:  # keep paho's own queue small
                time.sleep(0.005)
            self._client.publish(self.prefix + message.topic, message.payload, qos=1)
            self.sent += 1

    def _on_publish(self, _c: object, _u: object, _mid: int, rc: object, _p: object) -> None:
        with self._lock:
            self.acked += 1


async def stored_points(influx: InfluxClient, measurements: Sequence[str]
                        ) -> dict[Point, list[float]]:
    """Every stored point of the test's database: (device_id, ts) -> its field values."""
    out: dict[Point, list[float]] = {}
    for measurement in measurements:
        series = await influx.query(f"SELECT * FROM {quote_ident(measurement)} GROUP BY device_id")
        for s in series:
            device_id = s["tags"]["device_id"]
            fields = [i for i, c in enumerate(s["columns"]) if c not in ("time", "district",
                                                                          "grid")]
            for row in s["values"]:
                point = (device_id, row[0])
                assert point not in out, f"{point} stored twice"
                out[point] = [row[i] for i in fields if row[i] is not None]
    return out


def expected_points(sent: Sequence[Reading]) -> dict[Point, list[float]]:
    return {(r.device_id, r.ts_ms): [r.value] for r in sent}
