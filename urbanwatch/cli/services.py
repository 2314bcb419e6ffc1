"""`urbanwatch services up|down|status`: the managed Mosquitto and influxd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from urbanwatch.cli.options import ConfigFile, one_line_errors
from urbanwatch.services.broker_auth import managed_services
from urbanwatch.services.managed_service import ServiceError, ServiceStatus
from urbanwatch.services.services import Services
from urbanwatch.settings import load_settings

services_app = typer.Typer(help="Start, stop and inspect the managed Mosquitto and InfluxDB.",
                           no_args_is_help=True)

StateDir = Annotated[Path | None, typer.Option("--state-dir", help="state folder [settings]")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
MqttPort = Annotated[int | None, typer.Option("--mqtt-port", help="broker port [settings]")]
InfluxPort = Annotated[int | None, typer.Option("--influx-port", help="influxd port [settings]")]
MosquittoBin = Annotated[str | None, typer.Option("--mosquitto-bin", hidden=True)]
InfluxdBin = Annotated[str | None, typer.Option("--influxd-bin", hidden=True)]


@services_app.command()
def up(state_dir: StateDir = None, as_json: AsJson = False, mqtt_port: MqttPort = None,
       influx_port: InfluxPort = None, mosquitto_bin: MosquittoBin = None,
       influxd_bin: InfluxdBin = None, config: ConfigFile = None) -> None:
    """Start both services in the background (reuses the ones already running)."""
    services = _services(config, state_dir, mqtt_port, influx_port, mosquitto_bin, influxd_bin)
    try:
        statuses = services.up(detach=True)
    except ServiceError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    _report(services, statuses, as_json)


@services_app.command()
def down(state_dir: StateDir = None, as_json: AsJson = False, mqtt_port: MqttPort = None,
         influx_port: InfluxPort = None, config: ConfigFile = None) -> None:
    """Stop both services (SIGTERM, then SIGKILL after 10 s)."""
    services = _services(config, state_dir, mqtt_port, influx_port, None, None)
    services.down()
    _report(services, services.status(), as_json)


@services_app.command()
def status(state_dir: StateDir = None, as_json: AsJson = False, mqtt_port: MqttPort = None,
           influx_port: InfluxPort = None, config: ConfigFile = None) -> None:
    """Show whether each service runs and answers, with its pid and URL."""
    services = _services(config, state_dir, mqtt_port, influx_port, None, None)
    _report(services, services.status(), as_json)


def _services(config: Path | None, state_dir: Path | None, mqtt_port: int | None,
              influx_port: int | None, mosquitto_bin: str | None,
              influxd_bin: str | None) -> Services:
    with one_line_errors():
        settings = load_settings(config, state_dir=state_dir, mqtt={"port": mqtt_port},
                                 influx={"port": influx_port})
    return managed_services(settings, mosquitto_bin=mosquitto_bin, influxd_bin=influxd_bin)


def _report(services: Services, statuses: list[ServiceStatus], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({
            "mqtt_url": services.mqtt.url,
            "influx_url": services.influx.url,
            "state_dir": str(services.mqtt.origin.parent.parent),  # <state>/services/mosquitto
            "services": [
                {"name": s.name, "running": s.running, "pid": s.pid, "url": s.url,
                 "log": str(s.log)} for s in statuses
            ],
        }))
        return
    table = Table("service", "state", "pid", "url", "log")
    for s in statuses:
        state = "[green]running[/green]" if s.running else "[red]stopped[/red]"
        table.add_row(s.name, state, str(s.pid or "-"), s.url, str(s.log))
    Console().print(table)
