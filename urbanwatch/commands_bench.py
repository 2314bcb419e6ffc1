"""`urbanwatch bench`: benchmarks (not tests); results and commands go in BENCHMARKS.md."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

bench_app = typer.Typer(help="Benchmarks: rule-engine throughput and memory.", no_args_is_help=True)


@bench_app.command()
def engine(
    series: Annotated[int, typer.Option("--series", min=1, help="Series in the city.")] = 100_000,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Readings per batch.")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Readings/s of the rule engine (default pack + detectors), vs the reference; bytes/series."""
    from bench.engine import run

    err = Console(stderr=True)
    with err.status("benchmarking") as status:
        result = run(n_series=series, batch=batch, report=lambda stage: status.update(stage))
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"rule engine, {result['n_series']:,} series, batches of {batch:,}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("engine readings/s", f"{result['engine_readings_per_s']:,}")
    table.add_row("reference readings/s", f"{result['reference_readings_per_s']:,}")
    table.add_row("speed-up", f"{result['speedup_vs_reference']}x")
    for n, per in result["bytes_per_series"].items():
        table.add_row(f"bytes/series at {int(n):,}", f"{per:,}")
    err.print(table)
