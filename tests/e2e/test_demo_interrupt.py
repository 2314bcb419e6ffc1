"""`urbanwatch demo` until Ctrl-C: it serves, and SIGINT stops everything cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from urbanwatch.services import free_port, port_open


def test_ctrl_c_stops_the_demo_and_its_services(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("MQTT", "INFLUX", "API")}
    env = {**os.environ, **{f"URBANWATCH_{k}__PORT": str(v) for k, v in ports.items()}}
    demo = subprocess.Popen(
        [sys.executable, "-m", "urbanwatch", "demo", "--devices", "100", "--rate", "500",
         "--state-dir", str(tmp_path / "state")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        devices = _wait_for_devices(f"http://127.0.0.1:{ports['API']}", demo)
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert devices == 100
    assert demo.returncode == 0, stderr[-2000:]
    assert f"http://127.0.0.1:{ports['API']}" in stderr  # the URLs were printed
    assert "published" in stderr
    assert not port_open(ports["MQTT"]) and not port_open(ports["INFLUX"])


def _wait_for_devices(api_url: str, demo: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert demo.poll() is None, demo.communicate()[1][-2000:]
        try:
            response = httpx.get(f"{api_url}/api/v1/devices", params={"limit": 1}, timeout=2)
            if response.status_code == 200 and httpx.get(f"{api_url}/readyz").status_code == 200:
                return int(response.json()["total"])
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the demo's API never became ready")
