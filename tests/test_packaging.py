"""A plain `pip install .` gives a working CLI and API: every runtime import is declared.

The static check reads every import of the shipped packages (at any depth, so a lazy import
inside a function counts too) and maps third-party ones to the distributions declared in
`pyproject.toml`'s runtime dependencies. The wheel test builds the wheel, installs it without
the dev extras into a fresh virtual environment and runs the CLI and imports the API there.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("devices", "ingest", "rules", "alerts", "api", "simulators", "urbanwatch")


def declared() -> set[str]:
    """Normalised names of the runtime dependencies (extras like `[asyncio]` dropped)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = (re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0] for spec in project["dependencies"])
    return {_normal(name) for name in names}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files importing it, for modules outside the stdlib and project."""
    found: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in SHIPPED:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_is_a_declared_dependency() -> None:
    distributions = packages_distributions()
    wanted = declared()
    undeclared = {
        module: sorted(files)
        for module, files in third_party_imports().items()
        if not {_normal(d) for d in distributions.get(module, [module])} & wanted
    }
    assert undeclared == {}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _pip(sys.executable, "wheel", "--no-deps", "-w", str(dist), str(ROOT))
    assert "deprecat" not in built.lower()  # no warning of our own making (e.g. the licence form)
    [wheel] = dist.glob("urbanwatch-*.whl")
    pages = {"api/web/pages/dashboard.html", "api/web/static/js/api.js",
             "api/web/static/vendor/leaflet/leaflet-src.esm.js",
             "api/web/static/vendor/swagger-ui/swagger-ui-bundle.js"}
    assert pages <= set(zipfile.ZipFile(wheel).namelist()), "the web pages are not in the wheel"
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _pip(str(python), "install", str(wheel))
    cli = subprocess.run([str(env_dir / "bin" / "urbanwatch"), "--help"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert "serve" in cli.stdout and "devices" in cli.stdout
    imported = subprocess.run(
        [str(python), "-c", "import api.app, urbanwatch.platform; print(api.app.create_app)"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr


def _pip(python: str, *args: str) -> str:
    """Run pip quietly; what it printed (pip's own notes included)."""
    done = subprocess.run([python, "-m", "pip", "-v", *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr
