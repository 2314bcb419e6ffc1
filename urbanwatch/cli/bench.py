"""`urbanwatch bench ...`: the benchmarks, run as their own program (`python -m bench ...`).

This is the boundary between the platform and its benchmarks: the platform never imports
`bench`. Every argument after `bench` (including `--help`) is handed to
`sys.executable -m bench` unchanged; its output goes straight to ours and its exit code is
ours. Results and the commands that produced them go in BENCHMARKS.md.
"""

from __future__ import annotations

import subprocess
import sys

import typer

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def bench(ctx: typer.Context) -> None:
    """Benchmarks: throughput, latency, memory (`bench NAME --help`; NAME: engine, ingest, …)."""
    result = subprocess.run([sys.executable, "-m", "bench", *ctx.args], check=False)
    raise typer.Exit(result.returncode)
