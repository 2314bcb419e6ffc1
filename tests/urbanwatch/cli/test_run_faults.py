"""Start-up and shutdown faults of `urbanwatch serve` / `demo` are loud and quick.

Each test runs the real command as a child process: a port it needs is taken (it exits at
once, non-zero, naming the port and the setting that moves it), or a service it depends on is
down when SIGTERM comes (it exits anyway). Waits are generous; nothing asserts a duration.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.platform_process import PlatformProcess
from tests.support.polling import eventually
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

URBANWATCH = str(Path(sys.executable).with_name("urbanwatch"))
EXIT_WAIT_S = 60


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """The exit code and the error output, its lines joined (the console wraps them)."""
    result = subprocess.run([URBANWATCH, *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=EXIT_WAIT_S)
    return result.returncode, " ".join(result.stderr.split())


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_the_api_port_in_use_stops_the_command_naming_the_port_and_setting(
    command: str, taken_port: int, tmp_path: Path,
) -> None:
    code, stderr = run([command, "--state-dir", str(tmp_path), "--api-port", str(taken_port)])
    assert code != 0
    assert f"port {taken_port} (the API, 127.0.0.1) is already in use" in stderr
    assert "--api-port or URBANWATCH_API__PORT" in stderr
    assert not (tmp_path / "services").exists()  # nothing was started


@pytest.mark.parametrize("service", ["Mosquitto", "influxd"])
def test_a_managed_service_port_in_use_names_its_setting(
    service: str, taken_port: int, tmp_path: Path,
) -> None:
    variable = {"Mosquitto": "URBANWATCH_MQTT__PORT", "influxd": "URBANWATCH_INFLUX__PORT"}
    ports = {name: str(taken_port if s == service else free_port())
             for s, name in variable.items()}
    code, stderr = run(["serve", "--state-dir", str(tmp_path), "--api-port", str(free_port())],
                       env=ports)
    assert code != 0
    assert f"port {taken_port} (the managed {service}, 127.0.0.1) is already in use" in stderr
    assert f"choose another port with {variable[service]}" in stderr
    assert "urbanwatch services down --state-dir" in stderr  # in case it is another's
    assert not (tmp_path / "services").exists()


def test_sigterm_stops_serve_while_influxdb_is_down_from_the_start(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [URBANWATCH, "serve", "--state-dir", str(tmp_path), "--api-port", str(free_port()),
             "--mqtt-url", mosquitto.url, "--influx-url", f"http://127.0.0.1:{free_port()}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    try:  # still starting: waiting for an InfluxDB that nothing serves
        wait_for(lambda: "is not answering" in log_path.read_text(), proc, log_path)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=EXIT_WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1, log_path.read_text()  # it exited by itself, not by a signal
    assert "stopped while starting" in log_path.read_text()


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + EXIT_WAIT_S
    while not check():
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


@pytest.mark.parametrize("outage", ["influxd", "mosquitto"])
async def test_sigterm_stops_serve_during_an_outage(
    outage: str, settings: Settings, influxd: Influxd, mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    service = influxd if outage == "influxd" else mosquitto
    platform = PlatformProcess(settings, tmp_path / "serve.log")
    platform.start()
    try:
        await platform.wait_ready()
        service.stop()  # brought back after the test by the fixtures
        await eventually(lambda: not service.is_running(), f"{outage} stopped")
        code = platform.stop(timeout_s=EXIT_WAIT_S)
    finally:
        if platform.running():
            platform.kill()
    assert code == 0, platform.log_tail()  # a clean stop, not cut short nor SIGKILLed
