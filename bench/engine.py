"""Engine benchmark at steady state: readings/s, idle tick cost and bytes per series, all counted.

The workload is the default rule pack plus one rule that runs the ``seasonal`` baseline over every
series (the pack's own ``anomaly`` rule runs ``combined`` on a third of them). Before anything is
timed, every series of the city is fed ``fill`` readings a report interval apart, whole city per
batch, so that every window is full and every detector past its warm-up. Then, timed: batches of
``batch`` readings in which most series appear once and some several times (a device's readings
of the last seconds together), one backlog burst (series that were cut off delivering a stretch
of readings at once), each batch judged at its ``now`` and followed by a tick, as the platform
does. After it, ``idle_tick_ms`` is the median of ticks a second apart with no readings between.

``bytes_per_series`` is the growth of the process's resident memory from before the city was
built to the engine after the timed part (the workload's own readings let go, freed memory handed
back to the system), over the series: the registry, the engine's slot table, attribute columns,
rule tables, deadlines, all its state and what its detectors keep of the last round, Python
objects included. The reference
(`rules.oracles.engine.Reference`) gets a fresh city of the same size and the first
``reference_readings`` readings of the timed batches (its own state empty: it is the per-reading
baseline, not a steady state). ``run()`` returns a dict; ``urbanwatch bench engine [--json]``
prints it. One process, one core.
"""

from __future__ import annotations

import ctypes
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack, load_rules
from rules.language.model import Rule
from rules.oracles.engine import Reference

T0_MS = 1_732_252_800_000
STEP_MS = 60_000  # the fill's interval: the catalogue's usual report interval
GAUGE_LEVELS = {"warning_level": 3.0, "guaranteed_level": 4.0, "historical_max_level": 5.0}
SEASONAL_EVERYWHERE = """
- {id: bench-seasonal, category: device, when: anomaly(seasonal) > 0.99,
   clear_when: anomaly(seasonal) < 0.9, severity: info}
"""
Report = Callable[[str], None]
JSON_KEYS = ("n_series", "engine_readings_per_s", "reference_readings_per_s", "idle_tick_ms",
             "bytes_per_series")


@dataclass(frozen=True)
class Workload:
    """The timed part: batches (each judged at its ``now``, then ticked at ``tick_ms``)."""

    batches: list[tuple[ReadingBatch, int, int]]  # (readings, now_ms, tick_ms)

    @property
    def readings(self) -> int:
        return sum(len(b) for b, _, _ in self.batches)


def bench_rules() -> list[Rule]:
    """The default pack plus the seasonal baseline over every series."""
    return [*load_default_pack(), *load_rules(SEASONAL_EVERYWHERE)]


def city(n_series: int) -> tuple[Registry, dict[str, dict[str, float]]]:
    """Devices of every catalogue type in turn, in 1-km cells, until ``n_series`` series exist."""
    catalogue = load_catalogue()
    types = list(catalogue)
    devices, attributes, n, i = [], {}, 0, 0
    while n < n_series:
        kind = types[i % len(types)]
        device_id = f"{kind}-{i}"
        cell = f"g-{(i // 40) % 50}-{i % 40}"
        devices.append(Device(device_id, kind, f"d{(i // 2000) % 12}", 0.0, 0.0, grid=cell))
        if kind == "water_level":
            attributes[device_id] = GAUGE_LEVELS
        n += len(catalogue[kind].metrics)
        i += 1
    return Registry.build(catalogue, devices), attributes


def levels(n_series: int, seed: int = 0) -> np.ndarray:
    """Each series' quiet level (readings are level plus noise)."""
    return np.random.default_rng(seed).uniform(0.0, 10.0, n_series)


def fill(engine: Engine, base: np.ndarray, n_readings: int, seed: int = 1) -> int:
    """Feed every series ``n_readings`` readings ``STEP_MS`` apart; the time of the last."""
    rng = np.random.default_rng(seed)
    slots = np.arange(len(base))
    for k in range(n_readings):
        ts_ms = T0_MS + k * STEP_MS
        values = base + rng.normal(0.0, 1.0, len(base))
        engine.evaluate(ReadingBatch.from_columns(slots, np.full(len(base), ts_ms), values),
                        ts_ms)
    return T0_MS + (n_readings - 1) * STEP_MS


def workload(base: np.ndarray, start_ms: int, n_batches: int, size: int, seed: int = 2,
             repeat_share: float = 0.1, repeats: int = 5, burst_series: int = 5_000,
             burst_readings: int = 10) -> Workload:
    """``n_batches`` batches of ``size`` readings, 600 ms apart after ``start_ms``.

    In each, ``repeat_share`` of the readings are ``repeats`` readings of the same series (100 ms
    apart), the others one reading each of random series. Halfway, a burst: ``burst_series``
    series (silent until then) deliver ``burst_readings`` readings each, the stretch since
    ``start_ms``, with that batch.
    """
    rng = np.random.default_rng(seed)
    n = len(base)
    burst = rng.choice(n, size=min(burst_series, n // 10), replace=False)
    others = np.setdiff1d(np.arange(n), burst)
    out = []
    for b in range(n_batches):
        now_ms = start_ms + (b + 1) * 600
        pool = others if b < n_batches // 2 else np.arange(n)
        n_rep = int(size * repeat_share) // repeats
        picked = rng.choice(pool, size=min(size - n_rep * (repeats - 1), len(pool)), replace=False)
        slots = [picked, np.repeat(picked[:n_rep], repeats - 1)]
        ts = [np.full(len(picked), now_ms), np.tile(now_ms - 100 * np.arange(1, repeats), n_rep)]
        if b == n_batches // 2:
            slots.append(np.repeat(burst, burst_readings))
            steps = np.linspace(start_ms + 1, now_ms - 1, burst_readings).astype(np.int64)
            ts.append(np.tile(steps, len(burst)))
        s, t = np.concatenate(slots), np.concatenate(ts)
        values = base[s] + rng.normal(0.0, 1.0, len(s))
        order = rng.permutation(len(s))  # arrival order is not time order
        out.append((ReadingBatch.from_columns(s[order], t[order], values[order]), now_ms,
                    now_ms + 300))
    return Workload(out)


def _timed(impl: Engine | Reference, work: Workload) -> tuple[float, float]:
    """(readings per wall-clock second, per CPU second of this process), ticks included."""
    wall, cpu = time.perf_counter(), time.process_time()
    for batch, now_ms, tick_ms in work.batches:
        impl.evaluate(batch, now_ms)
        impl.tick(tick_ms)
    n = work.readings
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def idle_ticks_ms(engine: Engine, after_ms: int, n: int = 20) -> list[float]:
    """Milliseconds of ``n`` ticks a second apart, with no readings between them."""
    out = []
    for k in range(1, n + 1):
        started = time.perf_counter()
        engine.tick(after_ms + k * 1000)
        out.append((time.perf_counter() - started) * 1000)
    return out


def held_bytes() -> int:
    """Resident bytes of this process once freed memory went back to the system (Linux)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # the allocator keeps freed heap pages otherwise
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run(n_series: int = 100_000, batch: int = 10_000, n_batches: int = 50, fill_readings: int = 205,
        reference_readings: int = 2_000, report: Report | None = None) -> dict:
    """Fill a city's engine, then measure readings/s, idle ticks, bytes per series, reference.

    ``report`` is told the name of each stage as it starts.
    """
    say = report or (lambda stage: None)
    rss_before = held_bytes()
    say(f"building a city of {n_series:,} series")
    registry, attributes = city(n_series)
    engine = Engine(bench_rules(), registry, attributes=attributes)
    base = levels(registry.n_series)
    say(f"filling: {fill_readings} readings of every series")
    last_fill_ms = fill(engine, base, fill_readings)
    work = workload(base, last_fill_ms, n_batches, batch)
    say(f"engine: {n_batches} batches of {batch:,} (+ a burst), each ticked")
    engine_rps, engine_cpu = _timed(engine, work)
    ticks = idle_ticks_ms(engine, work.batches[-1][2])
    first, now_ms, tick_ms = work.batches[0]
    sample = Workload([(first.take(np.arange(min(reference_readings, len(first)))), now_ms,
                        tick_ms)])
    timed_readings = work.readings
    del work, first
    held = held_bytes() - rss_before
    del engine
    gc.collect()
    say(f"reference: {reference_readings:,} readings")
    reference = Reference(bench_rules(), registry, attributes=attributes)
    reference_rps, reference_cpu = _timed(reference, sample)
    return {
        "n_series": registry.n_series,
        "engine_readings_per_s": round(engine_rps),
        "reference_readings_per_s": round(reference_rps),
        "idle_tick_ms": round(statistics.median(ticks), 3),
        "bytes_per_series": round(held / registry.n_series, 1),
        "engine_readings_per_cpu_s": round(engine_cpu),
        "reference_readings_per_cpu_s": round(reference_cpu),
        "idle_tick_ms_max": round(max(ticks), 3),
        "timed_readings": timed_readings,
        "batch": batch,
        "fill_readings_per_series": fill_readings,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
