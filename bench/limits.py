"""`bench limits`: what this machine's broker and time-series store carry with cheap clients.

- Mosquitto with C clients (`simulators/publisher.c` and `bench/subscriber.c`, libmosquitto):
  one publisher sends pre-generated messages of ~100 bytes as fast as the broker takes them,
  one subscriber receives them, at QoS 0 and at QoS 1; the rate is what the subscriber
  received per second (from its first message to its last).
- InfluxDB ``/write``: pre-built line protocol (one field per point, as the platform writes
  readings) in large batches, a few writes in flight, through the platform's own
  `InfluxClient` (gzip on the wire, as ingest sends it); points per second.

The other benchmarks give their figures also as a fraction of these ceilings (`fraction`).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.timeseries.client import InfluxClient
from simulators import c_publisher

SUBSCRIBER_SOURCE = Path(__file__).with_name("subscriber.c")
PAYLOAD_BYTES = 100
TOPIC = "limits/city/d01/dev-0001/data"
RUN_TIMEOUT_S = 300.0
Report = Callable[[str], None]


def run(mqtt_host: str, mqtt_port: int, influx_url: str, work: Path, *, messages: int,
        points: int, batch: int = 10_000, in_flight: int = 2,
        report: Report | None = None) -> dict[str, Any]:
    say = report or (lambda stage: None)
    say("building the C clients")
    publisher = c_publisher.build(work)
    subscriber = c_publisher.build(work, SUBSCRIBER_SOURCE)
    result: dict[str, Any] = {"payload_bytes": PAYLOAD_BYTES, "messages": messages}
    for qos in (0, 1):
        say(f"Mosquitto, QoS {qos}: {messages:,} messages")
        result[f"mqtt_qos{qos}"] = _mqtt(publisher, subscriber, mqtt_host, mqtt_port, work,
                                         messages, qos)
    say(f"InfluxDB /write: {points:,} points in batches of {batch:,}")
    result["influx_write"] = asyncio.run(_influx(influx_url, points, batch, in_flight))
    result["mqtt_qos0_messages_per_s"] = result["mqtt_qos0"]["messages_per_s"]
    result["mqtt_qos1_messages_per_s"] = result["mqtt_qos1"]["messages_per_s"]
    result["influx_points_per_s"] = result["influx_write"]["points_per_s"]
    return result


def fractions(limits: dict[str, Any], **rates: tuple[float, str]) -> dict[str, float]:
    """Each rate as a fraction of one of `limits`' ceilings: name=(rate, ceiling key), the key
    one of ``mqtt_qos0_messages_per_s``, ``mqtt_qos1_messages_per_s``, ``influx_points_per_s``."""
    return {name: round(rate / limits[key], 3) for name, (rate, key) in rates.items()}


def quick(mqtt_host: str, mqtt_port: int, influx_url: str, work: Path,
          report: Report | None = None) -> dict[str, Any]:
    """A shorter `run`, for another benchmark to give its figures as fractions of (same run)."""
    return run(mqtt_host, mqtt_port, influx_url, work, messages=100_000, points=300_000,
               report=report)


def _mqtt(publisher: Path, subscriber: Path, host: str, port: int, work: Path, n: int,
          qos: int) -> dict[str, Any]:
    messages = work / f"limits-{PAYLOAD_BYTES}.txt"
    if not messages.exists():
        head = '{"ts":1700000000000,"m":{"v":'
        body = head + "1" * (PAYLOAD_BYTES - len(head) - 2) + "}}"
        messages.write_text(f"{TOPIC}\t{body}\n" * n)
    sub = subprocess.Popen([str(subscriber), host, str(port), TOPIC, str(qos), str(n)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sub.stdout is not None and sub.stderr is not None
        if sub.stdout.readline().strip() != "ready":
            raise c_publisher.CPublisherError(f"subscriber did not start: {sub.stderr.read()}")
        pub = c_publisher.publish(publisher, host, port, messages, 1000, qos=qos)
        published_s = c_publisher.wait_published(pub, n, RUN_TIMEOUT_S)
        out, err = sub.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.communicate()
    words = out.split()  # received <n> in <seconds>
    if len(words) != 4 or words[0] != "received":
        raise c_publisher.CPublisherError(f"subscriber: {out!r} {err.strip()[-400:]}")
    received, seconds = int(words[1]), float(words[3])
    return {"qos": qos, "published_per_s": round(n / published_s), "received": received,
            "lost": n - received, "seconds": seconds,
            "messages_per_s": round(received / seconds) if seconds else 0}


async def _influx(url: str, n: int, batch: int, in_flight: int) -> dict[str, Any]:
    database = f"bench_limits_{time.monotonic_ns()}"
    t0_s = int(time.time()) - 3 * 3600
    series = 10_000
    batches = [
        "".join(
            f"air_quality,device=aq-{i % series:06d},district=d{i % 6} pm25={(i % 997) / 10}"
            f" {t0_s + i // series}\n"
            for i in range(lo, min(lo + batch, n))
        ).encode()
        for lo in range(0, n, batch)
    ]
    async with InfluxClient(url, database, timeout_s=120.0) as influx:
        await influx.ensure_schema()
        queue = list(reversed(batches))

        async def writer() -> None:
            while queue:
                await influx.write(queue.pop(), precision="s")

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
        stored = await influx.count_values()
        await influx.drop_database()
    return {"points": n, "stored": stored, "batch": batch, "in_flight": in_flight,
            "seconds": round(seconds, 3), "points_per_s": round(n / seconds)}
