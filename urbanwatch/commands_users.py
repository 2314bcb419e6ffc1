"""`urbanwatch users ...`: add people who log in to the API, set passwords, list them.

Like the device commands, each one migrates the database first and reports a failure as
one line on stderr with exit code 1. Passwords come from stdin (`--password-stdin`) or an
interactive prompt, never from the command line where other users could read them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security.principal import Role
from api.security.users import User, UserStore
from urbanwatch.commands_devices import AsJson, ConfigFile, DbUrl, StateDir, _one_line_errors
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.settings import load_settings

users_app = typer.Typer(
    name="users", help="People who log in to the API, and their roles.", no_args_is_help=True
)
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin (first line)")
]
T = TypeVar("T")


def _with_users(
    config: Path | None, state_dir: Path | None, db_url: str | None,
    work: Callable[[UserStore], Awaitable[T]],
) -> T:
    url = load_settings(config, state_dir=state_dir, db={"url": db_url}).db_url

    async def main() -> T:
        await migrate(url)
        engine = create_engine(url)
        try:
            sessions: async_sessionmaker[AsyncSession] = create_session_factory(engine)
            return await work(UserStore(sessions))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        lines = sys.stdin.read().splitlines()
        return lines[0] if lines else ""
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _record(user: User) -> dict[str, object]:
    return {
        "name": user.name, "role": user.role.value, "teams": sorted(user.teams),
        "disabled": user.disabled, "created_ms": user.created_ms, "updated_ms": user.updated_ms,
    }


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the login name")],
    role: Annotated[Role, typer.Option("--role", help="what the user may do")],
    teams: Annotated[
        list[str] | None, typer.Option("--team", help="a responder's team (repeat for more)")
    ] = None,
    password_stdin: PasswordStdin = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Add a user with a role (responders with one or more teams)."""
    with _one_line_errors():
        password = _password(password_stdin)
        user = _with_users(
            config, state_dir, db_url,
            lambda store: store.add(name, role, teams or [], password, _now_ms()),
        )
    scope = f" (teams {', '.join(sorted(user.teams))})" if user.teams else ""
    typer.echo(f"added {user.name}: {user.role.value}{scope}")


@users_app.command("passwd")
def set_password(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    password_stdin: PasswordStdin = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Set a user's password."""
    with _one_line_errors():
        password = _password(password_stdin)
        _with_users(
            config, state_dir, db_url, lambda store: store.set_password(name, password, _now_ms())
        )
    typer.echo(f"password of {name} changed")


@users_app.command("disable")
def disable_user(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Stop a user from logging in (their current access token runs out within minutes)."""
    _set_disabled(name, True, state_dir, db_url, config)


@users_app.command("enable")
def enable_user(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Let a disabled user log in again."""
    _set_disabled(name, False, state_dir, db_url, config)


def _set_disabled(
    name: str, disabled: bool, state_dir: Path | None, db_url: str | None, config: Path | None
) -> None:
    with _one_line_errors():
        _with_users(config, state_dir, db_url,
                    lambda store: store.set_disabled(name, disabled, _now_ms()))
    typer.echo(f"{name}: {'disabled' if disabled else 'enabled'}")


@users_app.command("list")
def list_users(
    as_json: AsJson = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """List users with their roles and teams (never their password hashes)."""
    with _one_line_errors():
        users = _with_users(config, state_dir, db_url, lambda store: store.list())
    if as_json:
        typer.echo(json.dumps([_record(u) for u in users]))
        return
    table = Table("name", "role", "teams", "disabled")
    for u in users:
        table.add_row(u.name, u.role.value, ", ".join(sorted(u.teams)), "yes" if u.disabled else "")
    console = Console()
    console.print(table)
    console.print(f"{len(users)} users")
