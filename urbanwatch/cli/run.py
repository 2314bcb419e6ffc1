"""`urbanwatch serve` and `urbanwatch demo`: run the platform (with a simulated city)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from alerts.errors import AlertError
from urbanwatch import log_lines
from urbanwatch.cli.demo_status import DemoStatusLine, announce_pages
from urbanwatch.cli.options import one_line_errors
from urbanwatch.demo import DemoOptions, run_demo
from urbanwatch.demo_logins import DemoLogins
from urbanwatch.partition import Partition
from urbanwatch.platform import PartitionError, Platform
from urbanwatch.services.managed_service import ServiceError
from urbanwatch.services.port_check import PortInUseError
from urbanwatch.settings import LogSettings, Settings, load_settings, without_password

T = TypeVar("T")
STOP_GRACE_S = 30.0
MqttUrl = Annotated[
    str | None, typer.Option("--mqtt-url", help="mqtt://[user:pass@]host:port [managed broker]")
]
InfluxUrl = Annotated[
    str | None, typer.Option("--influx-url", help="http://host:port [managed influxd]")
]
DbUrl = Annotated[
    str | None, typer.Option("--db-url", help="SQLAlchemy async URL [SQLite in the state dir]")
]
StateDir = Annotated[Path | None, typer.Option("--state-dir", help="state folder [./.urbanwatch]")]
ApiHost = Annotated[str | None, typer.Option("--api-host", help="[127.0.0.1]")]
ApiPort = Annotated[int | None, typer.Option("--api-port", help="[8000]")]
Config = Annotated[Path | None, typer.Option("--config", help="TOML settings file")]


def serve(
    mqtt_url: MqttUrl = None, influx_url: InfluxUrl = None, db_url: DbUrl = None,
    state_dir: StateDir = None, api_host: ApiHost = None, api_port: ApiPort = None,
    config: Config = None,
    clock: Annotated[
        str | None, typer.Option("--clock", help="wall, or readings: `now` follows the "
                                 "readings' time (simulate --speed) [wall]")
    ] = None,
    partition: Annotated[
        str | None, typer.Option("--partition", help="k/N: one of N workers sharing the city, "
                                 "owning the districts that hash to k (1..N); needs a shared "
                                 "PostgreSQL --db-url (docs/scaling.md)")
    ] = None,
    districts: Annotated[
        str | None, typer.Option("--districts", help="D01,D02,...: a worker owning these "
                                 "districts (instead of --partition)")
    ] = None,
) -> None:
    """Run the platform against the given services, or managed ones under the state dir."""
    settings = _settings(config, mqtt_url, influx_url, db_url, state_dir, api_host, api_port,
                         clock)
    console = Console(stderr=True)
    owned = _partition(partition, districts)

    async def main(stop: asyncio.Event, started: asyncio.Event) -> None:
        async with Platform(settings, partition=owned) as platform:
            _announce(console, platform)
            started.set()
            await platform.run(stop)

    _run(main, settings.log)


def demo(
    duration: Annotated[
        float | None, typer.Option("--duration", min=1, help="seconds [until Ctrl-C]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary")] = False,
    devices: Annotated[int, typer.Option("--devices", min=1, help="simulated devices")] = 2000,
    rate: Annotated[float, typer.Option("--rate", min=1, help="readings per second")] = 1000.0,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    mqtt_url: MqttUrl = None, influx_url: InfluxUrl = None, db_url: DbUrl = None,
    state_dir: StateDir = None, api_host: ApiHost = None, api_port: ApiPort = None,
    config: Config = None,
) -> None:
    """Start managed services, import a simulated city, run the platform and the simulator."""
    settings = _settings(config, mqtt_url, influx_url, db_url, state_dir, api_host, api_port)
    console = Console(stderr=True, quiet=as_json)
    options = DemoOptions(devices=devices, seed=seed, rate=rate, duration_s=duration)

    async def main(stop: asyncio.Event, started: asyncio.Event) -> dict[str, int]:
        with DemoStatusLine(console) as status_line:

            def running(platform: Platform, logins: DemoLogins) -> None:
                _announce(console, platform)
                announce_pages(console, platform.endpoints.api_url, logins)
                status_line.start()
                started.set()

            return await run_demo(settings, options, stop, running, status_line.show)

    summary = _run(main, settings.log)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print(f"published {summary['published']}, stored {summary['stored']}, "
                      f"rejected {summary['rejected']}")


def _partition(partition: str | None, districts: str | None) -> Partition | None:
    """The worker's share of the city from `--partition` or `--districts` (not both)."""
    if partition is not None and districts is not None:
        raise typer.BadParameter("give --partition or --districts, not both")
    try:
        if partition is not None:
            return Partition.parse(partition)
        return Partition.listed(districts) if districts is not None else None
    except ValueError as exc:  # the name grammar's InvalidNameError included
        raise typer.BadParameter(str(exc)) from None


def _settings(config: Path | None, mqtt_url: str | None, influx_url: str | None,
              db_url: str | None, state_dir: Path | None, api_host: str | None,
              api_port: int | None, clock: str | None = None) -> Settings:
    with one_line_errors():
        return load_settings(
            config, state_dir=state_dir, mqtt={"url": mqtt_url}, influx={"url": influx_url},
            db={"url": db_url}, api={"host": api_host, "port": api_port}, clock=clock,
        )


def _run(main: Callable[[asyncio.Event, asyncio.Event], Awaitable[T]], log: LogSettings) -> T:
    """Run `main(stop, started)` until it returns; SIGINT / SIGTERM ask it to stop cleanly.

    Before `main` sets `started` there is nothing to flush: a signal cancels the start at once
    (it may be waiting for a service that is down). A clean stop not done within
    `STOP_GRACE_S` is cut short: the broker redelivers what was not acknowledged.
    """
    log_lines.install(log.level, log.format)

    async def runner() -> T:
        stop, started = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        running = asyncio.current_task()
        assert running is not None

        cut_short: list[asyncio.TimerHandle] = []

        def on_signal() -> None:
            # Called again for the same signal when the API server passes on what it caught.
            if not started.is_set():
                running.cancel()
            elif not cut_short:
                cut_short.append(loop.call_later(STOP_GRACE_S, running.cancel))
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await main(stop, started)
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
            raise _StopCutShort("while starting" if not started.is_set() else
                                f"before its clean stop finished (within {STOP_GRACE_S:g} s)"
                                ) from None

    try:
        return asyncio.run(runner())
    # said even with --json
    except (ServiceError, AlertError, PortInUseError, PartitionError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    except _StopCutShort as exc:
        Console(stderr=True).print(f"[yellow]stopped[/yellow] {exc}", highlight=False)
        raise typer.Exit(1) from exc


class _StopCutShort(Exception):
    """A stop was asked for while starting, or did not finish in time: the run was cancelled."""


def _announce(console: Console, platform: Platform) -> None:
    e = platform.endpoints
    mqtt, influx, sql = (without_password(u) for u in (e.mqtt_url, e.influx_url, e.db_url))
    console.print(f"[bold]urbanwatch[/bold] is running — API {e.api_url}/api/v1/devices "
                  f"(docs {e.api_url}/docs)\n  MQTT {mqtt}   InfluxDB {influx} "
                  f"(db {platform.settings.influx.database})   SQL {sql}\n  Ctrl-C stops.")
