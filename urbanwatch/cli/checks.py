"""`urbanwatch config check`, `rules check FILE` and `routing check FILE`: offline validation.

For the CI of a city's own configuration repository: nothing is started or connected to. Each
prints every problem it finds (with its file, line and column where there is one) on stderr
and exits 1 if there was any; otherwise it says what it checked and exits 0. Values of secret
settings are never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from alerts.errors import RoutingError
from alerts.routing import load_routing
from rules.language.loader import check_rules
from urbanwatch.cli.options import ConfigFile
from urbanwatch.config_sources import SettingsError, config_path
from urbanwatch.settings import load_settings

config_app = typer.Typer(help="Check the settings offline.", no_args_is_help=True)
rules_app = typer.Typer(help="Check rule files offline.", no_args_is_help=True)
routing_app = typer.Typer(help="Check routing files offline.", no_args_is_help=True)
File = Annotated[Path, typer.Argument(help="the file to check")]


@config_app.command("check")
def config_check(config: ConfigFile = None) -> None:
    """Validate the settings (file, environment, secret files) and the rule and routing files
    they name."""
    try:
        path = config_path(config)
        settings = load_settings(config)
    except (SettingsError, FileNotFoundError) as exc:
        _fail(exc.problems if isinstance(exc, SettingsError) else [str(exc)])
    problems = []
    if settings.rules.path is not None:
        problems += _rule_problems(settings.rules.path)
    if settings.alerts.routing_path is not None:
        problems += _routing_problems(settings.alerts.routing_path)
    if problems:
        _fail(problems)
    typer.echo(f"ok: settings from {path or 'defaults and the environment'}; "
               f"state folder {settings.state_dir}; time zone {settings.city.timezone}")


@rules_app.command("check")
def rules_check(file: File) -> None:
    """Validate a rule file: every problem, with its line and column."""
    problems = _rule_problems(file)
    if problems:
        _fail(problems)
    typer.echo(f"ok: {file}")


@routing_app.command("check")
def routing_check(file: File) -> None:
    """Validate a routing file: every problem, with its line and column."""
    problems = _routing_problems(file)
    if problems:
        _fail(problems)
    typer.echo(f"ok: {file}")


def _rule_problems(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read the rule file: {exc}"]
    _, problems = check_rules(text)
    return [f"{path}: {p}" for p in problems]


def _routing_problems(path: Path) -> list[str]:
    try:
        load_routing(path)
    except RoutingError as exc:
        return [f"{path}: {problem}" for problem in exc.problems]
    return []


def _fail(problems: list[str] | tuple[str, ...]) -> NoReturn:
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    typer.echo(f"{len(problems)} problem(s) found", err=True)
    raise typer.Exit(1)
