"""`urbanwatch teams login TEAM`: an MQTT login for a team's own system.

The team (of the routing file in force) may then subscribe to `dispatch/{team}/#` on the managed
broker and to nothing else. With a persistent session (MQTT 3.1.1 `clean_session=False`, or
MQTT 5 `clean_start=False` with a session expiry) and QoS 1 it also gets what was dispatched
while it was away. The password is printed once; running the command again replaces it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from alerts.routing import load_routing
from alerts.sql.team_logins import TeamLogin, TeamLogins, dispatch_filter
from urbanwatch.cli.options import AsJson, Database, Sessions, database_command
from urbanwatch.services.broker_auth import broker_present, sync_broker_auth
from urbanwatch.settings import Settings

teams_app = typer.Typer(
    name="teams", help="MQTT logins for the teams of the routing file.", no_args_is_help=True
)


@teams_app.command("login")
@database_command
def login(
    team: Annotated[str, typer.Argument(metavar="TEAM", help="a team id of the routing file")],
    as_json: AsJson = False,
    *,
    db: Database,
) -> None:
    """Give TEAM a new MQTT login (replacing its old one) and print its password once."""

    async def work(settings: Settings, sessions: Sessions) -> TeamLogin:
        issued = await TeamLogins(sessions).issue(team, load_routing(settings.alerts.routing_path))
        if broker_present(settings):
            await sync_broker_auth(settings, sessions)
        return issued

    issued = db.run(work)
    topics = settings_prefix(db) + dispatch_filter(issued.team_id)
    if as_json:
        typer.echo(json.dumps({"team_id": issued.team_id, "username": issued.username,
                               "password": issued.password, "subscribe": topics}))
        return
    typer.echo(f"{issued.team_id}  MQTT username: {issued.username}  password: {issued.password}")
    typer.echo(f"(may subscribe to {topics} only; the password is shown only once)")


def settings_prefix(db: Database) -> str:
    return db.settings().mqtt.topic_prefix
