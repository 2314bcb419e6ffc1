"""`urbanwatch teams`: the teams of the routing file, and MQTT logins for their systems.

`list`, `show`, `set`, `remove`, `cover` and `uncover` read and edit the routing file the
settings name (`[alerts] routing_path`) through `alerts.routing_edit`, as the API does: the
whole new routing is validated (every problem printed with its line and column) before the file
is replaced, its comments kept. The running platform reloads a changed routing file on its next
alert tick (`[alerts] tick_s`).

`login TEAM` gives a team an MQTT login. The team (of the routing file in force) may then
subscribe to `dispatch/{team}/#` on the managed broker and to nothing else. With a persistent
session (MQTT 3.1.1 `clean_session=False`, or MQTT 5 `clean_start=False` with a session expiry)
and QoS 1 it also gets what was dispatched while it was away. The password is printed once;
running the command again replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer

from alerts.errors import AlertError, RoutingError, UnknownTeamError
from alerts.routing import Handler, RoutingConfig, load_routing
from alerts.routing import Team as TeamModel
from alerts.routing_edit import RoutingFile
from alerts.sql.team_logins import TeamLogin, TeamLogins, dispatch_filter
from api.clock import parse_instant
from api.schemas.teams import TeamDetail
from devices import plain_yaml
from urbanwatch.cli.options import (
    AsJson,
    ConfigFile,
    Database,
    Sessions,
    database_command,
    one_line_errors,
)
from urbanwatch.services.broker_auth import broker_present, sync_broker_auth
from urbanwatch.settings import Settings

teams_app = typer.Typer(
    name="teams", help="The teams of the routing file: list and edit them, cover on-call "
    "schedules, and MQTT logins.", no_args_is_help=True,
)
Team = Annotated[str, typer.Argument(metavar="TEAM", help="a team id of the routing file")]
Schedule = Annotated[str, typer.Argument(metavar="SCHEDULE", help="an on-call schedule id")]
MOMENT = "RFC 3339 (2026-12-24T18:00+08:00), epoch ms, or the city's local time (2026-12-24T18:00)"
RELOADED = "the running platform puts it in force on its next alert tick ([alerts] tick_s)"


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


@teams_app.command("list")
def list_teams(as_json: AsJson = False, config: ConfigFile = None) -> None:
    """List the teams of the routing file: handler, members, on-call schedules."""
    with one_line_errors():
        settings = Database(config, None, None).settings()
        routing = load_routing(settings.alerts.routing_path)
        details = [TeamDetail.of(h, t, settings.city.timezone)
                   for h in routing.handlers for t in h.teams]
    if as_json:
        typer.echo(json.dumps([d.model_dump(mode="json") for d in details]))
        return
    for d in details:
        schedules = ", ".join(s.id for s in d.oncall) or "-"
        typer.echo(f"{d.id:<20} {d.handler:<20} {len(d.members):>2} members  on call: "
                   f"{schedules:<12} {d.name}")


@teams_app.command("show")
def show_team(team: Team, as_json: AsJson = False, config: ConfigFile = None) -> None:
    """Show one team: channels, members with contacts, schedules with their overrides."""
    with one_line_errors():
        settings = Database(config, None, None).settings()
        routing = load_routing(settings.alerts.routing_path)
        detail = TeamDetail.of(*_team(routing, team), settings.city.timezone)
    if as_json:
        typer.echo(detail.model_dump_json())
        return
    typer.echo(f"{detail.id} ({detail.name}), handler {detail.handler}")
    for c in detail.channels:
        typer.echo(f"  channel {c.type} {c.target or ''}".rstrip())
    for m in detail.members:
        typer.echo(f"  member {m.id}: {m.name} {m.email or ''} {m.phone or ''}".rstrip())
    for s in detail.oncall:
        r = s.rotation
        typer.echo(f"  on call {s.id}: {', '.join(r.members)}, handing over {r.handoff_day} "
                   f"{r.handoff_time} every {r.length_weeks} week(s) from {r.start}")
        for o in s.overrides:
            typer.echo(f"    override {o.index}: {o.member} from {o.start} until {o.end}")


@teams_app.command("set")
def set_team(
    team: Team,
    handler: Annotated[str, typer.Option(help="the handler (department) the team belongs to")],
    name: Annotated[str | None, typer.Option(help="the team's name")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="YAML: the team as the routing file holds it (name, channels, "
        "members, oncall); without it a team keeps what it has")] = None,
    config: ConfigFile = None,
) -> None:
    """Create TEAM under --handler, or replace it (a new team gets the MQTT channel)."""
    with one_line_errors():
        routing = _routing_file(config)
        data = _team_file(from_file) if from_file is not None else routing.team_data(team) or {
            "channels": [{"type": "mqtt"}]}
        data = {**data, "id": team, **({"name": name} if name is not None else {})}
        if "name" not in data:
            raise ValueError("a new team needs --name (or a name in --from-file)")
    _write(routing, lambda f: f.put_team(handler, data), f"team {team} written")


@teams_app.command("remove")
@database_command
def remove_team(team: Team, *, db: Database) -> None:
    """Remove TEAM, if no route, escalation level or policy step names it; its MQTT login
    goes with it."""
    settings = db.settings()
    _write(RoutingFile(settings.alerts.routing_path), lambda f: f.remove_team(team),
           f"team {team} removed")

    async def work(settings: Settings, sessions: Sessions) -> None:
        if await TeamLogins(sessions).revoke(team) and broker_present(settings):
            await sync_broker_auth(settings, sessions)

    db.run(work)


@teams_app.command("cover")
def cover(
    team: Team, schedule: Schedule,
    member: Annotated[str, typer.Argument(metavar="MEMBER", help="the member on duty")],
    start: Annotated[str, typer.Option("--from", help=f"from: {MOMENT}")],
    until: Annotated[str, typer.Option("--until", help=f"until (exclusive): {MOMENT}")],
    config: ConfigFile = None,
) -> None:
    """MEMBER covers TEAM's SCHEDULE from --from until --until (an override)."""
    with one_line_errors():
        settings = Database(config, None, None).settings()
        tz = settings.city.timezone
        routing = RoutingFile(settings.alerts.routing_path)
        start_ms, end_ms = _instant(start, tz), _instant(until, tz)
    _write(routing, lambda f: f.cover(team, schedule, member, start_ms, end_ms, tz),
           f"{member} covers {team}/{schedule}")


@teams_app.command("uncover")
def uncover(
    team: Team, schedule: Schedule,
    index: Annotated[int, typer.Argument(metavar="INDEX", help="as `teams show` numbers it")],
    config: ConfigFile = None,
) -> None:
    """Remove override INDEX of TEAM's SCHEDULE."""
    with one_line_errors():
        routing = _routing_file(config)
    _write(routing, lambda f: f.uncover(team, schedule, index),
           f"override {index} of {team}/{schedule} removed")


def _routing_file(config: Path | None) -> RoutingFile:
    return RoutingFile(Database(config, None, None).settings().alerts.routing_path)


def _write(routing: RoutingFile, change: Callable[[RoutingFile], RoutingConfig], done: str) -> None:
    """Make `change`; an invalid result prints every problem (nothing is written)."""
    with one_line_errors():
        try:
            change(routing)
        except RoutingError as exc:
            _fail(exc.problems)
        except AlertError as exc:  # refused (still referenced, read-only) or not found
            _fail([str(exc)], unchanged=True)
    typer.echo(f"{done} in {routing.path}; {RELOADED}")


def _fail(problems: list[str], *, unchanged: bool = False) -> NoReturn:
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if not unchanged:
        typer.echo(f"{len(problems)} problem(s) found; the routing file is unchanged", err=True)
    raise typer.Exit(1)


def _team(routing: RoutingConfig, team_id: str) -> tuple[Handler, TeamModel]:
    try:
        return routing.team(team_id)
    except UnknownTeamError:
        raise ValueError(f"no team {team_id!r} in the routing file; see `urbanwatch teams "
                         "list`") from None


def _team_file(path: Path) -> dict[str, Any]:
    data = plain_yaml.load(path.read_text(encoding="utf-8"))[1]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping (name, channels, members, oncall)")
    return data


def _instant(text: str, tz: str) -> int:
    """Epoch ms of an RFC 3339 time or epoch ms, or of a local time of the city `tz`."""
    try:
        return parse_instant(text)
    except ValueError:
        local = datetime.fromisoformat(text)  # a ValueError names what it could not read
        if local.tzinfo is not None:
            raise
        return round(local.replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)
