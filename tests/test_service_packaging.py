"""The systemd unit and the container recipe: they parse, run as an unprivileged user, and
fetch nothing but Debian's packages and PyPI (the container is not built here)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "urbanwatch.service"
CONTAINERFILE = ROOT / "packaging" / "Containerfile"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_runs_serve_unprivileged_with_a_state_directory() -> None:
    unit = _unit()
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert (service["User"], service["Group"]) == ("urbanwatch", "urbanwatch")
    assert service["ExecStart"].endswith("/bin/urbanwatch serve")
    assert service["ExecStartPre"].endswith("/bin/urbanwatch config check")
    assert service["StateDirectory"] == "urbanwatch"
    assert "URBANWATCH_CONFIG=/etc/urbanwatch/urbanwatch.toml" in UNIT.read_text()
    assert service["NoNewPrivileges"] == "yes" and service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_reads_the_unit_without_a_complaint(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install -y systemd"
    cli = Path(sys.executable).parent / "urbanwatch"  # the unit's program, where it is here
    unit = tmp_path / "urbanwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/urbanwatch/bin/urbanwatch", str(cli)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_the_container_uses_only_debian_packages_and_pypi_and_runs_unprivileged() -> None:
    text = CONTAINERFILE.read_text()
    instructions = [line.split(maxsplit=1)[0] for line in text.splitlines()
                    if line and not line.startswith((" ", "#"))]
    assert instructions[0] == "FROM" and re.search(r"^FROM debian:\S+$", text, re.M)
    assert not re.search(r"\b(curl|wget|ADD)\b", text)  # no download of its own
    assert "apt-get install" in text and "pip install" in text
    assert re.search(r"^USER urbanwatch$", text, re.M)
    assert re.search(r'^CMD \["urbanwatch", "serve"\]$', text, re.M)
