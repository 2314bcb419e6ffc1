"""Engine benchmark: throughput with the default pack plus detectors, the reference ratio, memory.

The workload is the default rule pack plus one rule that runs the ``seasonal`` baseline over every
series (the pack's own ``anomaly`` rule runs ``combined`` on a third of them), so both the speed
and the memory figures include the seasonal baseline. Throughput is given per wall-clock second
and per CPU second of the process (steadier on a shared machine). ``run()`` returns a dict;
``urbanwatch bench engine [--json]`` prints it. One process, one core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.engine.engine import Engine
from rules.language.loader import load_default_pack, load_rules
from rules.language.model import Rule
from rules.oracles.engine import Reference

T0_MS = 1_732_252_800_000
GAUGE_LEVELS = {"warning_level": 3.0, "guaranteed_level": 4.0, "historical_max_level": 5.0}
SEASONAL_EVERYWHERE = """
- {id: bench-seasonal, category: device, when: anomaly(seasonal) > 0.99,
   clear_when: anomaly(seasonal) < 0.9, severity: info}
"""
Report = Callable[[str], None]


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


def batches(registry: Registry, n_batches: int, size: int, seed: int = 0) -> list[ReadingBatch]:
    """Readings of random series (each series at most once per batch), 1 s apart per batch."""
    rng = np.random.default_rng(seed)
    n = registry.n_series
    base = rng.uniform(0.0, 10.0, n)  # quiet city: per-series level plus noise
    out = []
    for b in range(n_batches):
        slots = rng.choice(n, size=min(size, n), replace=False)
        ts = np.full(len(slots), T0_MS + b * 1000, dtype=np.int64)
        out.append(ReadingBatch.from_columns(slots, ts, base[slots] + rng.normal(0, 1, len(slots))))
    return out


def _throughput(impl: Engine | Reference, work: list[ReadingBatch]) -> tuple[float, float]:
    """(readings per wall-clock second, readings per CPU second of this process).

    On a shared machine the wall clock also counts the time the process waits for a core; the
    CPU time does not, so it is the steadier of the two (both are reported).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in work:
        impl.evaluate(batch, int(batch.ts_ms[0]) + 500)
    n = sum(len(b) for b in work)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def memory_per_series(n_series: int) -> float:
    """Engine state bytes per series (after warm-up readings) with the benchmark rules."""
    registry, attributes = city(n_series)
    engine = Engine(bench_rules(), registry, attributes=attributes)
    for batch in batches(registry, 3, 10_000, seed=1):
        engine.evaluate(batch, int(batch.ts_ms[0]))
    return engine.nbytes / registry.n_series


def run(n_series: int = 100_000, batch: int = 10_000, n_batches: int = 30,
        reference_batches: int = 1, memory_at: tuple[int, ...] = (100_000, 1_000_000),
        report: Report | None = None) -> dict:
    """Measure readings/s of the engine and of the reference, and bytes per series.

    The reference gets the engine's first ``reference_batches`` batches (same size, same ticks).
    ``report`` is told the name of each stage as it starts.
    """
    say = report or (lambda stage: None)
    say(f"building a city of {n_series:,} series")
    registry, attributes = city(n_series)
    rules = bench_rules()
    engine = Engine(rules, registry, attributes=attributes)
    work = batches(registry, n_batches + 2, batch)
    say(f"engine: {n_batches} batches of {batch:,}")
    _throughput(engine, work[:2])  # warm-up: first readings of each series, caches
    engine_rps, engine_cpu = _throughput(engine, work[2:])
    say(f"reference: {reference_batches} batch(es) of {batch:,}")
    reference = Reference(rules, registry, attributes=attributes)
    reference_rps, reference_cpu = _throughput(reference, work[:reference_batches])
    memory = {}
    for n in memory_at:
        say(f"memory at {n:,} series")
        memory[str(n)] = round(memory_per_series(n), 1)
    return {
        "n_series": registry.n_series,
        "batch": batch,
        "rules": len(rules),
        "engine_readings_per_s": round(engine_rps),
        "reference_readings_per_s": round(reference_rps),
        "speedup_vs_reference": round(engine_rps / reference_rps, 1),
        "engine_readings_per_cpu_s": round(engine_cpu),
        "reference_readings_per_cpu_s": round(reference_cpu),
        "speedup_vs_reference_cpu": round(engine_cpu / reference_cpu, 1),
        "bytes_per_series": memory,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
