"""`make` without root and with OS packages missing stops with the exact command to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_missing_packages_without_root_print_the_install_command() -> None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.fail("this test drops to the 'nobody' user and so must run as root with runuser")
    # the checkout (and pytest's temporary folders) may be their owner's only: 'nobody' runs a
    # copy of the Makefile in a folder of its own
    with tempfile.TemporaryDirectory() as shared:
        os.chmod(shared, 0o755)
        shutil.copy(ROOT / "Makefile", Path(shared) / "Makefile")
        run = subprocess.run(
            ["runuser", "-u", "nobody", "--", "make", "-s", "-C", shared, "os-packages",
             "OS_PACKAGES=uw-missing-pkg:/nonexistent/uw-missing-bin "
             "mosquitto:/usr/sbin/mosquitto"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    assert run.returncode != 0
    assert "sudo apt-get update && sudo apt-get install -y uw-missing-pkg" in run.stdout
    assert "mosquitto" not in run.stdout.split("install -y", 1)[1]  # present ones are not asked for


def test_present_packages_need_nothing() -> None:
    run = subprocess.run(["make", "-s", "-C", str(ROOT), "os-packages"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Installing" not in run.stdout
