"""Checkpoint benchmark: what saving and restoring the engine's state costs at a city's size.

The engine of `bench.engine` (default pack plus the seasonal baseline everywhere) is fed
``rounds`` readings of every series, so series state, windows, rule states and detectors all
hold something; then it is snapshotted and written (`urbanwatch.checkpoint`, fsynced), read
back, and restored into a freshly built engine. "Ready" is the engine's part of a restart:
building the engine, loading the file and restoring it (services and SQL come on top).
``run()`` returns a dict; ``python -m bench checkpoint [--json]`` prints it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.engine import T0_MS, bench_rules, city, fill, levels
from rules.engine.engine import Engine
from urbanwatch.checkpoint import FILENAME, load_checkpoint, write_checkpoint

Report = Callable[[str], None]


def run(n_series: int, rounds: int = 3, report: Report = lambda _: None) -> dict:
    registry, attributes = city(n_series)
    rules = bench_rules()
    report(f"building the engine for {registry.n_series:,} series")
    engine = Engine(rules, registry, attributes=attributes)
    report("feeding it")
    fill(engine, levels(registry.n_series), rounds)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / FILENAME
        report("snapshot + write")
        started = time.perf_counter()
        snap = engine.snapshot()
        snapshot_s = time.perf_counter() - started
        size = write_checkpoint(path, snap, T0_MS)
        write_s = time.perf_counter() - started
        del snap
        report("restart: build, load, restore")
        started = time.perf_counter()
        fresh = Engine(rules, registry, attributes=attributes)
        build_s = time.perf_counter() - started
        loaded = load_checkpoint(path)
        assert loaded is not None
        load_s = time.perf_counter() - started - build_s
        restored = fresh.restore(loaded[0])
        ready_s = time.perf_counter() - started
    assert restored.exact and restored.series == registry.n_series
    return {
        "n_series": registry.n_series,
        "rounds_fed": rounds,
        "checkpoint_bytes": size,
        "bytes_per_series": round(size / registry.n_series, 1),
        "engine_state_bytes_per_series": round(engine.nbytes / registry.n_series, 1),
        "snapshot_s": round(snapshot_s, 3),
        "snapshot_and_write_s": round(write_s, 3),
        "build_engine_s": round(build_s, 3),
        "load_file_s": round(load_s, 3),
        "restore_s": round(ready_s - build_s - load_s, 3),
        "ready_s": round(ready_s, 3),
    }
