"""The `urbanwatch` command line (Typer + Rich): one module per command group.

`options` holds what the database commands share; `bench` is only a pass-through to the
benchmarks' own program (`python -m bench`), so nothing here imports them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from urbanwatch.cli.bench import PASS_THROUGH, bench
from urbanwatch.cli.checks import config_app, routing_app, rules_app
from urbanwatch.cli.devices import devices_app
from urbanwatch.cli.nab import nab
from urbanwatch.cli.replay import replay_command
from urbanwatch.cli.run import demo, serve
from urbanwatch.cli.score import score_command
from urbanwatch.cli.services import services_app
from urbanwatch.cli.simulate import city, simulate
from urbanwatch.cli.teams import teams_app
from urbanwatch.cli.users import users_app
from urbanwatch.config_sources import CONFIG_ENV, config_path

app = typer.Typer(
    name="urbanwatch",
    help="IoT urban-sensing and emergency-warning platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(config: Annotated[Path | None, typer.Option(
    "--config", help="TOML settings file for every command [$URBANWATCH_CONFIG, else "
    "/etc/urbanwatch/urbanwatch.toml if present]")] = None) -> None:
    """IoT urban-sensing and emergency-warning platform."""
    if config is not None:  # commands (and `bench`, a program of its own) read it from there
        try:
            os.environ[CONFIG_ENV] = str(config_path(config).resolve())  # type: ignore[union-attr]
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc), param_hint="--config") from None


app.add_typer(services_app, name="services")
app.add_typer(devices_app, name="devices")
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")
app.add_typer(config_app, name="config")
app.add_typer(rules_app, name="rules")
app.add_typer(routing_app, name="routing")
app.command()(serve)
app.command()(demo)
app.command()(simulate)
app.command()(city)
app.command()(nab)
app.command("score")(score_command)
app.command("replay")(replay_command)
app.command(context_settings=PASS_THROUGH, add_help_option=False)(bench)
