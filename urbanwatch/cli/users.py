"""`urbanwatch users ...`: add people who log in to the API, set passwords, disable, delete
and list them.

Like the device commands, each one migrates the database first and reports a failure as
one line on stderr with exit code 1. Passwords come from stdin (`--password-stdin`) or an
interactive prompt, never from the command line where other users could read them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from api.security.principal import Role
from api.security.users import User, UserStore
from devices.clock import now_ms
from urbanwatch.cli.options import AsJson, Database, database_command

users_app = typer.Typer(
    name="users", help="People who log in to the API, and their roles.", no_args_is_help=True
)
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin (first line)")
]
T = TypeVar("T")


def _on_users(db: Database, work: Callable[[UserStore], Awaitable[T]]) -> T:
    return db.run(lambda _, sessions: work(UserStore(sessions)))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        lines = sys.stdin.read().splitlines()
        return lines[0] if lines else ""
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _record(user: User) -> dict[str, object]:
    return {
        "name": user.name, "role": user.role.value, "teams": sorted(user.teams),
        "disabled": user.disabled, "created_ms": user.created_ms, "updated_ms": user.updated_ms,
    }


@users_app.command("add")
@database_command
def add_user(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the login name")],
    role: Annotated[Role, typer.Option("--role", help="what the user may do")],
    teams: Annotated[
        list[str] | None, typer.Option("--team", help="a responder's team (repeat for more)")
    ] = None,
    password_stdin: PasswordStdin = False,
    *,
    db: Database,
) -> None:
    """Add a user with a role (responders with one or more teams)."""
    password = _password(password_stdin)
    user = _on_users(db, lambda store: store.add(name, role, teams or [], password, now_ms()))
    scope = f" (teams {', '.join(sorted(user.teams))})" if user.teams else ""
    typer.echo(f"added {user.name}: {user.role.value}{scope}")


@users_app.command("passwd")
@database_command
def set_password(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    password_stdin: PasswordStdin = False,
    *,
    db: Database,
) -> None:
    """Set a user's password; the tokens they hold stop working at once."""
    password = _password(password_stdin)
    _on_users(db, lambda store: store.set_password(name, password, now_ms()))
    typer.echo(f"password of {name} changed")


@users_app.command("disable")
@database_command
def disable_user(name: Annotated[str, typer.Argument(metavar="NAME")], *, db: Database) -> None:
    """Stop a user from logging in; the tokens they already hold are refused at once."""
    _set_disabled(name, True, db)


@users_app.command("enable")
@database_command
def enable_user(name: Annotated[str, typer.Argument(metavar="NAME")], *, db: Database) -> None:
    """Let a disabled user log in again (the tokens they held stay void)."""
    _set_disabled(name, False, db)


@users_app.command("delete")
@database_command
def delete_user(name: Annotated[str, typer.Argument(metavar="NAME")], *, db: Database) -> None:
    """Remove a user; the tokens they hold stop working at once."""
    _on_users(db, lambda store: store.delete(name))
    typer.echo(f"deleted {name}")


def _set_disabled(name: str, disabled: bool, db: Database) -> None:
    _on_users(db, lambda store: store.set_disabled(name, disabled, now_ms()))
    typer.echo(f"{name}: {'disabled' if disabled else 'enabled'}")


@users_app.command("list")
@database_command
def list_users(as_json: AsJson = False, *, db: Database) -> None:
    """List users with their roles and teams (never their password hashes)."""
    users = _on_users(db, lambda store: store.list())
    if as_json:
        typer.echo(json.dumps([_record(u) for u in users]))
        return
    table = Table("name", "role", "teams", "disabled")
    for u in users:
        table.add_row(u.name, u.role.value, ", ".join(sorted(u.teams)), "yes" if u.disabled else "")
    console = Console()
    console.print(table)
    console.print(f"{len(users)} users")
