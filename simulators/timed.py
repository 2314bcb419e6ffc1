"""Publish the city on its own schedule in simulated time, with scenarios injected.

Every device reports at its type's interval (the catalogue's `report_interval_s`) from a
seeded offset; simulated time runs `speed` times faster than the wall clock, and the
readings carry simulated timestamps (a platform run with `clock = "readings"` follows them).
Messages go out in time order; when the broker or the platform is slower than `speed` asks,
simulated time simply waits for them (the run takes longer, nothing is skipped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.payloads import encode_readings
from simulators.publisher import Acks, ProgressCallback, PublishOptions, PublishSummary, connect
from simulators.scenarios.base import Run, Scenario
from simulators.scenarios.frame import Frame
from simulators.scenarios.plan import apply_all
from simulators.signals import values

CHUNK_ROWS = 500  # readings instants per encode/publish step


@dataclass(frozen=True)
class Schedule:
    """When each device reports: `first_ms[i] + k * interval_ms[i]`."""

    first_ms: np.ndarray
    interval_ms: np.ndarray

    @classmethod
    def of(cls, city: City, run: Run) -> Schedule:
        interval = np.array([city.catalogue[d.type].report_interval_s * 1000
                             for d in city.devices], dtype=np.int64)
        offset = np.random.default_rng([run.seed, 7]).uniform(0, 1, len(city.devices))
        return cls(run.start_ms + (offset * interval).astype(np.int64), interval)


def frames(city: City, run: Run, scenarios: Sequence[Scenario], until_ms: int,
           next_ms: np.ndarray, schedule: Schedule, max_rows: int = CHUNK_ROWS) -> Frame | None:
    """The earliest due readings before `until_ms` (advancing `next_ms`), scenarios applied."""
    due = np.flatnonzero(next_ms < min(until_ms, run.end_ms))
    if len(due) == 0:
        return None
    due = due[np.argsort(next_ms[due], kind="stable")[:max_rows]]
    ts = next_ms[due].copy()
    next_ms[due] += schedule.interval_ms[due]
    frame = Frame.of(due, ts, values(city, due, ts))
    apply_all(city, scenarios, frame)
    return frame


async def publish_timed(
    city: City, options: PublishOptions, run: Run, scenarios: Sequence[Scenario],
    speed: float, on_progress: ProgressCallback | None = None, stop: asyncio.Event | None = None,
) -> PublishSummary:
    """Publish the run from its start to its end, `speed` times faster than real time."""
    if speed <= 0 or not city.devices:
        raise ValueError("need speed > 0 and a city with devices")
    stop = stop or asyncio.Event()
    client = await connect(options)
    try:
        schedule = Schedule.of(city, run)
        next_ms = schedule.first_ms.copy()
        acks, started = Acks(), time.monotonic()
        while not stop.is_set() and next_ms.min() < run.end_ms:
            sim_now = run.start_ms + int((time.monotonic() - started) * speed * 1000)
            while len(acks.pending) < options.max_inflight and client.is_connected():
                frame = frames(city, run, scenarios, sim_now + 1, next_ms, schedule)
                if frame is None:
                    break
                for row, msg in enumerate(encode_readings(
                        city, frame.dev, frame.sent_ts_ms, frame.values, options.fmt,
                        options.topic_prefix)):
                    for _ in range(int(frame.copies[row])):
                        acks.add(client.publish(msg.topic, msg.payload, options.qos),
                                 msg.readings)
                acks.sweep()
            acks.sweep()
            if on_progress is not None:
                on_progress(acks.summary(len(city.devices), time.monotonic() - started))
            await asyncio.sleep(options.tick_s)
        deadline = time.monotonic() + options.drain_timeout_s
        while acks.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            acks.sweep()
        return acks.summary(len(city.devices), time.monotonic() - started)
    finally:
        client.disconnect()
        client.loop_stop()
