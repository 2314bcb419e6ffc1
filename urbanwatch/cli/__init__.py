"""The `urbanwatch` command line; the typer app is `urbanwatch.cli.app:app`."""
