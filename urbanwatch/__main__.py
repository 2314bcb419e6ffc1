from urbanwatch.cli.app import app

app(prog_name="urbanwatch")
