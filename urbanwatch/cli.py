"""The `urbanwatch` command line (Typer + Rich)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="urbanwatch",
    help="IoT urban-sensing and emergency-warning platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
