"""`urbanwatch bench ...` hands its arguments to `python -m bench` and returns its exit code."""

from __future__ import annotations

import subprocess
import sys


def _urbanwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "urbanwatch", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_help_is_the_benchmarks_own() -> None:
    run = _urbanwatch("bench", "ingest", "--help")

    assert run.returncode == 0, run.stderr
    assert "python -m bench ingest" in run.stdout
    assert "--senml" in run.stdout and "--spool" in run.stdout


def test_a_usage_error_keeps_its_exit_code() -> None:
    run = _urbanwatch("bench", "engine", "--series", "0")

    assert run.returncode == 2
    assert "--series" in run.stderr
