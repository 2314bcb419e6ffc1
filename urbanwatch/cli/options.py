"""What the `urbanwatch devices` and `users` commands share: options, errors, the database.

`database_command` gives a command the `--state-dir`, `--db-url` and `--config` options
(last, in that order, declared once here) and hands it a `Database` instead; it also
reports any failure as one line on stderr with exit code 1. `Database.run` runs async
work against the migrated database and disposes of its engine afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.errors import DeviceError
from urbanwatch.config_sources import SettingsError
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.settings import Settings, load_settings

StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="state folder (default .urbanwatch)")
]
DbUrl = Annotated[
    str | None, typer.Option("--db-url", help="SQLAlchemy async URL (default: SQLite in state dir)")
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")


@dataclass(frozen=True)
class Database:
    """The settings and SQL database a command was pointed at."""

    config: Path | None
    state_dir: Path | None
    db_url: str | None

    def settings(self) -> Settings:
        return load_settings(self.config, state_dir=self.state_dir, db={"url": self.db_url})

    def run(self, work: Callable[[Settings, Sessions], Awaitable[T]]) -> T:
        """`work(settings, sessions)` on the database, migrated first."""
        settings = self.settings()

        async def main() -> T:
            await migrate(settings.db_url)
            engine = create_engine(settings.db_url)
            try:
                return await work(settings, create_session_factory(engine))
            finally:
                await engine.dispose()

        return asyncio.run(main())


_DATABASE_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
    for name, option in (("state_dir", StateDir), ("db_url", DbUrl), ("config", ConfigFile))
]


def database_command(command: Callable[..., None]) -> Callable[..., None]:
    """`command(..., db: Database)` as a Typer command with the database options.

    Typer reads a command's options from its signature, so the wrapper shows Typer the
    command's own parameters (without `db`) followed by the shared ones.
    """

    @functools.wraps(command)
    def wrapper(
        *args: Any, state_dir: Path | None, db_url: str | None, config: Path | None, **kwargs: Any
    ) -> None:
        with one_line_errors():
            command(*args, db=Database(config, state_dir, db_url), **kwargs)

    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "db"]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *_DATABASE_OPTIONS]
    )
    return wrapper


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Report a failure as `error: <first line>` on stderr and exit 1, without a traceback;
    unusable settings as one `error:` line per problem, exit 2."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if isinstance(exc, SettingsError):  # every problem, each with its source
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(2) from None
        lines = _reasons(exc)
        kind = (
            "" if isinstance(exc, DeviceError | ValueError | OSError) else f"{type(exc).__name__}: "
        )
        typer.echo(f"error: {kind}{lines[0]}", err=True)
        raise typer.Exit(1) from None


def _reasons(exc: Exception) -> list[str]:
    """The lines worth a one-line report: a settings error's first line only names the model."""
    if isinstance(exc, ValidationError):
        return ["; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())]
    return str(exc).strip().splitlines() or [""]
