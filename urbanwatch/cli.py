"""The `urbanwatch` command line (Typer + Rich)."""

from __future__ import annotations

import typer

from urbanwatch.commands_bench import bench_app
from urbanwatch.commands_devices import devices_app
from urbanwatch.commands_nab import nab
from urbanwatch.commands_run import demo, serve
from urbanwatch.commands_services import services_app
from urbanwatch.commands_simulate import city, simulate
from urbanwatch.commands_users import users_app

app = typer.Typer(
    name="urbanwatch",
    help="IoT urban-sensing and emergency-warning platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(services_app, name="services")
app.add_typer(devices_app, name="devices")
app.add_typer(users_app, name="users")
app.add_typer(bench_app, name="bench")
app.command()(serve)
app.command()(demo)
app.command()(simulate)
app.command()(city)
app.command()(nab)
