"""`python -m bench NAME`: the benchmarks' own entry point (not tests); NAME below.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.checkpoint import run as run_checkpoint
from bench.e2e import E2eOptions, Services
from bench.e2e import run as run_e2e
from bench.engine import JSON_KEYS as ENGINE_KEYS
from bench.engine import run as run_engine
from bench.ingest import BenchOptions, BenchSetup
from bench.ingest import run as run_ingest
from bench.limits import fractions
from bench.limits import quick as quick_limits
from bench.limits import run as run_limits
from bench.nab_loco import Paths, shipped_candidate
from bench.nab_loco import run as run_nab_loco
from bench.peer import PeerError, PeerOptions
from bench.peer import run as run_peer
from bench.postgres import PostgresError
from bench.scale import ScaleOptions
from bench.scale import run as run_scale
from bench.web import WebBenchOptions
from bench.web import run as run_web
from simulators.c_publisher import CPublisherError
from urbanwatch.config_sources import CONFIG_ENV, config_path
from urbanwatch.database import migrate
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.managed_service import ServiceError
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port
from urbanwatch.settings import load_settings

app = typer.Typer(
    name="bench", help="Benchmarks: rule-engine and ingest throughput, memory, checkpoint cost.",
    no_args_is_help=True, pretty_exceptions_show_locals=False,
)

StateDirOption = Annotated[Path | None, typer.Option(
    "--state-dir", help="state folder [settings]")]


def _state(state_dir: Path | None) -> Path:
    """The state folder asked for, else the one of the settings, absolute."""
    return (state_dir or load_settings().state_dir).resolve()


@contextlib.contextmanager
def _failure_kept(work: Path, err: Console, *errors: type[Exception]) -> Iterator[None]:
    """A failure of one of `errors` is said with where its work folder is kept; exit 1."""
    try:
        yield
    except errors as exc:
        err.print(f"[red]error:[/red] {exc} (work folder kept: {work})", highlight=False)
        raise typer.Exit(1) from exc


def _finished(work: Path, result: dict[str, Any], as_json: bool) -> bool:
    """Remove the work folder; print `result` as JSON if asked (True: nothing more to print)."""
    shutil.rmtree(work, ignore_errors=True)
    if as_json:
        typer.echo(json.dumps(result))
    return as_json


@app.command("nab-loco")
def nab_loco(
    out: Annotated[Path, typer.Option(help="Working folder; candidate results are cached there.")],
    data: Annotated[Path, typer.Option(help="NAB data folder.")] = Path(
        "../shared/datasets/nab/data"),
    labels: Annotated[Path, typer.Option(help="NAB windows file.")] = Path(
        "../shared/datasets/nab/labels/combined_windows_dev.json"),
    scorer: Annotated[Path, typer.Option(help="NAB scorer (nab_score.py).")] = Path(
        "../shared/tools/nab_score.py"),
) -> None:
    """NAB alert-mode score of the shipped `anomaly` rule, leave-one-category-out (JSON)."""
    for path in (data, labels, scorer):
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist")
    err = Console(stderr=True)
    result = run_nab_loco(Paths(scorer, data, labels), out, report=err.print,
                          shipped=shipped_candidate())
    typer.echo(json.dumps(result, indent=1))
@app.callback()
def main(config: Annotated[Path | None, typer.Option(
    "--config", help="TOML settings file [$URBANWATCH_CONFIG]")] = None) -> None:
    """Benchmarks: rule-engine and ingest throughput, memory, checkpoint cost."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config_path(config))


@app.command()
def engine(
    series: Annotated[int, typer.Option("--series", min=1, help="Series in the city.")] = 100_000,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Readings per batch.")] = 10_000,
    batches: Annotated[int, typer.Option("--batches", min=2, help="Timed batches.")] = 50,
    fill: Annotated[int, typer.Option("--fill", min=1, help="Readings of every series fed "
                                      "before timing (full windows, warm detectors).")] = 205,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Rule engine at steady state: readings/s vs the reference, idle tick, bytes/series."""
    err = Console(stderr=True)
    with err.status("benchmarking") as status:
        result = run_engine(
            n_series=series, batch=batch, n_batches=batches, fill_readings=fill,
            report=lambda stage: status.update(stage),
        )
    if as_json:
        typer.echo(json.dumps({key: result[key] for key in ENGINE_KEYS}))
        return
    table = Table(title=f"rule engine, {result['n_series']:,} series, batches of {batch:,}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key.replace("_", " "), f"{value:,}")
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
    state_dir: StateDirOption = None,
    with_limits: Annotated[bool, typer.Option(
        "--limits/--no-limits", help="Measure the machine's ceilings first (`bench limits`, "
        "shorter) and give the rates also as fractions of them.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Readings/s from Mosquitto into InfluxDB (own services, ingestor in its own process)."""
    err = Console(stderr=True)
    work = _state(state_dir) / "tmp" / f"bench-ingest-{os.getpid()}"
    options = BenchOptions(devices=devices, single_readings=single, senml_readings=senml,
                           spool=spool, profile=profile)
    broker = Mosquitto(work, free_port(), allow_anonymous=True)
    influxd = Influxd(work, free_port())
    with (
        _failure_kept(work, err, ServiceError, CPublisherError, RuntimeError),
        contextlib.ExitStack() as stack,
        Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                 TimeElapsedColumn(), console=err) as progress,
    ):
        for service in (broker, influxd):
            stack.callback(service.stop)
            service.start()
        db_url = f"sqlite+aiosqlite:///{work / 'devices.db'}"
        asyncio.run(migrate(db_url))
        task = progress.add_task("starting", total=None)

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total or None)

        result = run_ingest(BenchSetup(broker, influxd, db_url, work), options, report)
        if with_limits:
            progress.update(task, description="limits", completed=0, total=None)
            limits = quick_limits(broker.host, broker.port, influxd.url, work)
            rate = result["readings_per_s"]
            result["limits"] = limits
            result["fraction_of_limits"] = fractions(
                limits, single_after_write=(rate["single_after_write"],
                                            "mqtt_qos1_messages_per_s"),
                senml50_after_write=(rate["senml50_after_write"], "influx_points_per_s"))
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
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Dashboard at city scale: login to a usable map and feed; MQTT publish to the page."""
    err = Console(stderr=True)
    work = _state(state_dir) / "tmp" / f"bench-web-{os.getpid()}"
    work.mkdir(parents=True)
    options = WebBenchOptions(devices=devices, incidents=incidents, logins=logins,
                              samples=samples)
    with (
        _failure_kept(work, err, ServiceError, RuntimeError, OSError),
        err.status("starting") as status,
    ):
        result = asyncio.run(run_web(work, options, lambda stage: status.update(stage)))
    if _finished(work, result, as_json):
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
    for column in ("run", "readings", "stored", "seconds", "readings/s",
                   "CPU s / 1,000 readings"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, r in result["runs"].items():
        cpu = ", ".join(f"{p} {s}" for p, s in r["cpu_s_per_1000_readings"].items())
        table.add_row(name, f"{r['readings']:,}", f"{r['stored']:,}", f"{r['seconds']:.2f}",
                      f"{r['readings_per_s']:,}", cpu)
    err.print(table)
    err.print(f"after_write / on_receipt: {result['after_write_vs_on_receipt']}")
    if "fraction_of_limits" in result:
        err.print(f"fraction of the machine's ceilings: {result['fraction_of_limits']}")
    if "spool_vs_influx" in result:
        err.print(f"spool / InfluxDB: {result['spool_vs_influx']}")


LimitsOption = Annotated[bool, typer.Option(
    "--limits/--no-limits", help="Measure the machine's ceilings first (`bench limits`, shorter) "
    "and give the figures also as fractions of them.")]


@contextlib.contextmanager
def own_services(work: Path) -> Iterator[tuple[Mosquitto, Influxd]]:
    """A Mosquitto (anonymous) and an influxd of the benchmark's own, on free ports."""
    broker = Mosquitto(work, free_port(), allow_anonymous=True)
    influxd = Influxd(work, free_port())
    with contextlib.ExitStack() as stack:
        for service in (broker, influxd):
            stack.callback(service.stop)
            service.start()
        yield broker, influxd


@app.command()
def limits(
    messages: Annotated[int, typer.Option("--messages", min=1000, help="MQTT messages per QoS.")
                        ] = 300_000,
    points: Annotated[int, typer.Option("--points", min=10_000, help="Points written.")
                      ] = 1_000_000,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """The machine's ceilings: Mosquitto with C clients (QoS 0, 1), InfluxDB /write (points/s)."""
    err = Console(stderr=True)
    work = _state(state_dir) / "tmp" / f"bench-limits-{os.getpid()}"
    with (
        _failure_kept(work, err, ServiceError, CPublisherError),
        own_services(work) as (broker, influxd),
        err.status("limits") as status,
    ):
        result = run_limits(broker.host, broker.port, influxd.url, work, messages=messages,
                            points=points, report=status.update)
    if _finished(work, result, as_json):
        return
    table = Table(title=f"limits: C clients, {result['payload_bytes']}-byte payloads; "
                        "InfluxDB /write")
    for column in ("ceiling", "rate", "detail"):
        table.add_column(column, justify="left" if column != "rate" else "right")
    for qos in (0, 1):
        r = result[f"mqtt_qos{qos}"]
        table.add_row(f"Mosquitto QoS {qos}", f"{r['messages_per_s']:,} msg/s",
                      f"{r['received']:,} received, {r['lost']:,} lost, publisher "
                      f"{r['published_per_s']:,} msg/s")
    w = result["influx_write"]
    table.add_row("InfluxDB /write", f"{w['points_per_s']:,} points/s",
                  f"{w['points']:,} points, batches of {w['batch']:,}, {w['in_flight']} in flight")
    err.print(table)


@app.command()
def e2e(
    devices: Annotated[int, typer.Option("--devices", min=1, help="Devices in the city.")
                       ] = 100_000,
    rate: Annotated[float, typer.Option("--rate", min=1, help="Offered readings/s.")
                    ] = 33_333.0,
    duration: Annotated[float, typer.Option("--duration", min=5, help="Measured seconds.")
                        ] = 60.0,
    warmup: Annotated[float, typer.Option("--warmup", min=0, help="Seconds before measuring.")
                      ] = 10.0,
    search: Annotated[int, typer.Option("--search", min=0, help="Shorter runs searching for "
                                        "the highest rate held, if the offered one is not.")
                      ] = 3,
    with_limits: LimitsOption = True,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """The whole platform under a city's load: sustained rate, backlog, alert and API latency."""
    err = Console(stderr=True)
    work = _state(state_dir) / "tmp" / f"bench-e2e-{os.getpid()}"
    options = E2eOptions(devices=devices, readings_per_s=rate, duration_s=duration,
                         warmup_s=warmup, search_steps=search,
                         search_duration_s=min(30.0, duration))
    with (
        _failure_kept(work, err, ServiceError, CPublisherError, RuntimeError),
        own_services(work) as (broker, influxd),
        err.status("e2e") as status,
    ):
        services = Services(broker.host, broker.port, influxd.url, broker.pid)
        result = run_e2e(services, work, options, report=status.update)
        if with_limits:
            limits = quick_limits(broker.host, broker.port, influxd.url, work, status.update)
            sustained = result["sustained_readings_per_s"]
            result["limits"] = limits
            result["fraction_of_limits"] = fractions(
                limits, messages=(sustained / result["readings_per_message"],
                                  "mqtt_qos1_messages_per_s"),
                readings=(sustained, "influx_points_per_s"))
    if _finished(work, result, as_json):
        return
    table = Table(title=f"e2e: the platform, {result['devices']:,} devices, "
                        f"{result['readings_per_message']} readings/message")
    for column in ("offered/s", "stored/s", "held", "backlog start → end", "alert p50/p95/p99 ms",
                   "API p99 ms", "RSS MB"):
        table.add_column(column, justify="right")
    for r in result["runs"]:
        if "error" in r:
            table.add_row(f"{r['offered_readings_per_s']:,}", r["error"], *[""] * 5)
            continue
        a = r["alert_latency_ms"]
        table.add_row(f"{r['offered_readings_per_s']:,}", f"{r['sustained_readings_per_s']:,}",
                      "yes" if r["held"] else "no",
                      f"{r['backlog_start']:,} → {r['backlog_end']:,}",
                      f"{a['p50']} / {a['p95']} / {a['p99']}", f"{r['api_p99_ms']}",
                      f"{r['rss_mb']}")
    err.print(table)
    err.print(f"highest rate held: {result['highest_held_readings_per_s']}")
    if "fraction_of_limits" in result:
        err.print(f"sustained, as a fraction of the machine's ceilings (messages: Mosquitto "
                  f"QoS 1, readings: InfluxDB /write): {result['fraction_of_limits']}")


@app.command()
def peer(
    readings: Annotated[int, typer.Option("--readings", min=1000, help="Readings per round, "
                                          "one per QoS 1 message.")] = 150_000,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Rounds of urbanwatch then "
                                        "Node-RED.")] = 2,
    processes: Annotated[int, typer.Option("--processes", min=1, help="urbanwatch ingest "
                                           "processes sharing the subscription.")] = 1,
    devices: Annotated[int, typer.Option("--devices", min=1, help="Devices in the city.")] = 1000,
    with_limits: LimitsOption = True,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """urbanwatch's ingest vs a Node-RED flow into InfluxDB, the same stream, alternated."""
    err = Console(stderr=True)
    state = _state(state_dir)
    work = state / "tmp" / f"bench-peer-{os.getpid()}"
    options = PeerOptions(readings=readings, devices=devices, rounds=rounds, processes=processes)
    with (
        _failure_kept(work, err, ServiceError, CPublisherError, PeerError, RuntimeError),
        own_services(work) as (broker, influxd),
        err.status("peer") as status,
    ):
        db_url = f"sqlite+aiosqlite:///{work / 'devices.db'}"
        asyncio.run(migrate(db_url))
        result = run_peer(BenchSetup(broker, influxd, db_url, work),
                          state / "cache" / "node-red", options, report=status.update)
        if with_limits:
            limits = quick_limits(broker.host, broker.port, influxd.url, work, status.update)
            result["limits"] = limits
            result["fraction_of_limits"] = fractions(
                limits, urbanwatch=(result["urbanwatch_readings_per_s"],
                                    "mqtt_qos1_messages_per_s"),
                nodered=(result["nodered_readings_per_s"], "mqtt_qos1_messages_per_s"))
    if _finished(work, result, as_json):
        return
    table = Table(title=f"peer: {result['readings']:,} readings, one per QoS 1 message; "
                        f"urbanwatch with {processes} ingest process(es)")
    for column in ("round", "contender", "seconds", "readings/s", "CPU s / 1,000 readings"):
        table.add_column(column, justify="right")
    for i, r in enumerate(result["rounds"]):
        cpu = ", ".join(f"{p} {s}" for p, s in r["cpu_s_per_1000_readings"].items())
        table.add_row(str(i // 2 + 1), r["contender"], f"{r['seconds']}",
                      f"{r['readings_per_s']:,}", cpu)
    err.print(table)
    err.print(f"urbanwatch {result['urbanwatch_readings_per_s']:,}/s, Node-RED "
              f"{result['nodered_readings_per_s']:,}/s: ratio {result['ratio']}")
    if "fraction_of_limits" in result:
        err.print(f"as a fraction of Mosquitto's QoS 1 ceiling with C clients: "
                  f"{result['fraction_of_limits']}")


@app.command()
def scale(
    devices: Annotated[int, typer.Option("--devices", min=100, help="Devices in the city.")
                       ] = 20_000,
    messages: Annotated[int, typer.Option("--messages", min=10_000, help="Messages in the "
                                          "stream each round works off.")] = 100_000,
    timeout: Annotated[float, typer.Option("--timeout", min=10, help="Seconds a round may "
                                           "take to work the stream off.")] = 300.0,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """One partitioned worker vs two (`serve --partition k/N`) on the same stream; CPU by
    process says what limits it."""
    err = Console(stderr=True)
    work = _state(state_dir) / "tmp" / f"bench-scale-{os.getpid()}"
    options = ScaleOptions(devices=devices, messages=messages, timeout_s=timeout)
    with (
        _failure_kept(work, err, ServiceError, CPublisherError, PostgresError, RuntimeError),
        own_services(work) as (broker, influxd),
        err.status("scale") as status,
    ):
        assert broker.pid is not None and influxd.pid is not None, "started above"
        services = Services(broker.host, broker.port, influxd.url, broker.pid,
                            influxd.pid)
        result = run_scale(services, work, options, report=status.update)
    if _finished(work, result, as_json):
        return
    table = Table(title=f"scale: {result['devices']:,} devices, {result['readings']:,} readings "
                        f"in {result['messages']:,} QoS 1 messages, {result['cpu_cores']} cores")
    for column in ("workers", "readings/s", "seconds", "cores used, by process",
                   "CPU s / 1,000 readings"):
        table.add_column(column, justify="right" if column in ("workers", "readings/s",
                                                               "seconds") else "left")
    for r in result["rounds"]:
        share = ", ".join(f"{p} {c}" for p, c in r["cpu_share"].items())
        cost = ", ".join(f"{p} {c}" for p, c in r["cpu_s_per_1000_readings"].items())
        table.add_row(str(r["workers"]), f"{r['readings_per_s']:,}", f"{r['seconds']}", share,
                      cost)
    err.print(table)
    err.print(f"two workers / one worker: ratio {result['ratio']}")


if __name__ == "__main__":
    app(prog_name="python -m bench")
