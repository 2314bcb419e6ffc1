from urbanwatch.cli import app

app(prog_name="urbanwatch")
