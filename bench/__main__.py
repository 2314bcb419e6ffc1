"""`python -m bench engine|ingest|checkpoint|web`: the benchmarks' own entry point (not tests).

`urbanwatch bench ...` runs this module as a subprocess, so the platform never imports the
benchmarks; the ingest benchmark starts its own managed Mosquitto and influxd
(``urbanwatch.services``). Results and the commands that produced them go in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.checkpoint import run as run_checkpoint
from bench.engine import run as run_engine
from bench.ingest import BenchOptions, BenchSetup
from bench.ingest import run as run_ingest
from bench.loadgen import LoadgenError
from bench.web import WebBenchOptions
from bench.web import run as run_web
from urbanwatch.database import migrate
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.managed_service import ServiceError
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port

app = typer.Typer(
    name="bench", help="Benchmarks: rule-engine and ingest throughput, memory, checkpoint cost.",
    no_args_is_help=True, pretty_exceptions_show_locals=False,
)


@app.command()
def engine(
    series: Annotated[int, typer.Option("--series", min=1, help="Series in the city.")] = 100_000,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Readings per batch.")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Readings/s of the rule engine (default pack + detectors), vs the reference; bytes/series."""
    err = Console(stderr=True)
    with err.status("benchmarking") as status:
        result = run_engine(
            n_series=series, batch=batch, report=lambda stage: status.update(stage)
        )
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


@app.command()
def checkpoint(
    series: Annotated[list[int] | None, typer.Option(
        "--series", min=1, help="Series in the city (repeat for several sizes).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Engine checkpoint: bytes/series, write time, and the engine's restart-to-ready time."""
    err = Console(stderr=True)
    results = []
    with err.status("benchmarking") as status:
        for n in series or [100_000, 1_000_000]:
            results.append(run_checkpoint(n, report=lambda stage: status.update(stage)))
    if as_json:
        typer.echo(json.dumps(results))
        return
    table = Table(title="engine checkpoint")
    for column in ("series", "bytes/series", "MB", "snapshot+write s", "build s", "load s",
                   "restore s", "ready s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(f"{r['n_series']:,}", f"{r['bytes_per_series']:,}",
                      f"{r['checkpoint_bytes'] / 1e6:,.0f}", f"{r['snapshot_and_write_s']}",
                      f"{r['build_engine_s']}", f"{r['load_file_s']}", f"{r['restore_s']}",
                      f"{r['ready_s']}")
    err.print(table)


@app.command()
def ingest(
    single: Annotated[int, typer.Option("--single", min=1, help="Readings sent one per message.")
                      ] = 150_000,
    senml: Annotated[int, typer.Option("--senml", min=50, help="Readings sent in SenML packs "
                                       "of 50.")] = 500_000,
    devices: Annotated[int, typer.Option("--devices", min=1, help="Devices in the city.")] = 1000,
    spool: Annotated[bool, typer.Option("--spool/--no-spool", help="Also time the spool with "
                                        "influxd stopped.")] = True,
    profile: Annotated[bool, typer.Option("--profile", help="cProfile each ingestor run; "
                                          "stats files are kept in the work folder.")] = False,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="state folder")] = Path(
        ".urbanwatch"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Readings/s from Mosquitto into InfluxDB (own services, ingestor in its own process)."""
    err = Console(stderr=True)
    work = state_dir.resolve() / "tmp" / f"bench-ingest-{os.getpid()}"
    options = BenchOptions(devices=devices, single_readings=single, senml_readings=senml,
                           spool=spool, profile=profile)
    broker = Mosquitto(work, free_port(), allow_anonymous=True)
    influxd = Influxd(work, free_port())
    try:
        with contextlib.ExitStack() as stack, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err,
        ) as progress:
            for service in (broker, influxd):
                stack.callback(service.stop)
                service.start()
            db_url = f"sqlite+aiosqlite:///{work / 'devices.db'}"
            asyncio.run(migrate(db_url))
            task = progress.add_task("starting", total=None)

            def report(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage, completed=done, total=total or None)

            result = run_ingest(BenchSetup(broker, influxd, db_url, work), options, report)
    except (ServiceError, LoadgenError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] {exc} (work folder kept: {work})", highlight=False)
        raise typer.Exit(1) from exc
    lost = [name for name, r in result["runs"].items() if r["stored"] != r["readings"]]
    if lost:  # keep the ingestor logs of every run
        err.print(f"[red]stored != published[/red] in {lost}; logs kept under {work}")
    elif profile:
        err.print(f"profiles: {work}/*.pstats")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_ingest(err, result)
    if lost:
        raise typer.Exit(1)


@app.command()
def web(
    devices: Annotated[int, typer.Option("--devices", min=1, help="Devices in the city.")
                       ] = 10_000,
    incidents: Annotated[int, typer.Option("--incidents", min=1, help="Active incidents.")
                         ] = 200,
    logins: Annotated[int, typer.Option("--logins", min=1, help="Timed logins.")] = 5,
    samples: Annotated[int, typer.Option(
        "--samples", min=0, help="Timed live updates (0: none).")] = 20,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="state folder")] = Path(
        ".urbanwatch"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Dashboard at city scale: login to a usable map and feed; MQTT publish to the page."""
    err = Console(stderr=True)
    work = state_dir.resolve() / "tmp" / f"bench-web-{os.getpid()}"
    work.mkdir(parents=True)
    options = WebBenchOptions(devices=devices, incidents=incidents, logins=logins,
                              samples=samples)
    try:
        with err.status("starting") as status:
            result = asyncio.run(run_web(work, options, lambda stage: status.update(stage)))
    except (ServiceError, RuntimeError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc} (work folder kept: {work})", highlight=False)
        raise typer.Exit(1) from exc
    shutil.rmtree(work, ignore_errors=True)
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"web, {result['devices']:,} devices, "
                        f"{result['active_incidents']} active incidents")
    for column in ("measure", "n", "median s", "p95 s", "max s"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name, key in (("login to usable map and feed", "login_to_usable_s"),
                      ("MQTT publish to incident on the page", "live_update_s")):
        r = result[key]
        if r["n"]:
            table.add_row(name, str(r["n"]), f"{r['median']}", f"{r['p95']}", f"{r['max']}")
    err.print(table)


def _print_ingest(err: Console, result: dict) -> None:
    table = Table(
        title=f"ingest, {result['devices']:,} devices, batches of {result['batch_size']:,}"
    )
    for column in ("run", "readings", "stored", "seconds", "readings/s"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, r in result["runs"].items():
        table.add_row(name, f"{r['readings']:,}", f"{r['stored']:,}", f"{r['seconds']:.2f}",
                      f"{r['readings_per_s']:,}")
    err.print(table)
    err.print(f"after_write / on_receipt: {result['after_write_vs_on_receipt']}")
    if "spool_vs_influx" in result:
        err.print(f"spool / InfluxDB: {result['spool_vs_influx']}")


if __name__ == "__main__":
    app(prog_name="python -m bench")
