"""The `urbanwatch` command line (Typer + Rich): one module per command group.

`options` holds what the database commands share; `bench` is only a pass-through to the
benchmarks' own program (`python -m bench`), so nothing here imports them.
"""

from __future__ import annotations

import typer

from urbanwatch.cli.bench import PASS_THROUGH, bench
from urbanwatch.cli.devices import devices_app
from urbanwatch.cli.nab import nab
from urbanwatch.cli.replay import replay_command
from urbanwatch.cli.run import demo, serve
from urbanwatch.cli.score import score_command
from urbanwatch.cli.services import services_app
from urbanwatch.cli.simulate import city, simulate
from urbanwatch.cli.teams import teams_app
from urbanwatch.cli.users import users_app

app = typer.Typer(
    name="urbanwatch",
    help="IoT urban-sensing and emergency-warning platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(services_app, name="services")
app.add_typer(devices_app, name="devices")
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")
app.command()(serve)
app.command()(demo)
app.command()(simulate)
app.command()(city)
app.command()(nab)
app.command("score")(score_command)
app.command("replay")(replay_command)
app.command(context_settings=PASS_THROUGH, add_help_option=False)(bench)
