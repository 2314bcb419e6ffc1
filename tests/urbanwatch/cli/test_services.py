"""`urbanwatch services up|down|status`, and a platform adopting what `up` started."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from urbanwatch.cli.services import services_app
from urbanwatch.platform import Platform
from urbanwatch.services.mosquitto import mqtt_answers, mqtt_connack
from urbanwatch.services.ports import free_port
from urbanwatch.services.services import Services
from urbanwatch.settings import Settings

runner = CliRunner()


@pytest.fixture
def cli_state(tmp_path: Path) -> Iterator[list[str]]:
    """CLI arguments for a private state folder on free ports; stops what they started."""
    mqtt_port, influx_port = free_port(), free_port()
    yield ["--state-dir", str(tmp_path), "--mqtt-port", str(mqtt_port),
           "--influx-port", str(influx_port)]
    Services(tmp_path / "services", mqtt_port=mqtt_port, influx_port=influx_port).down()


def _run_json(*args: str) -> dict:
    result = runner.invoke(services_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _pids(report: dict) -> dict[str, int | None]:
    return {s["name"]: s["pid"] for s in report["services"]}


@pytest.mark.services
def test_cli_up_status_down(cli_state: list[str], tmp_path: Path) -> None:
    mqtt_port, influx_port = cli_state[3], cli_state[5]

    first = _run_json("up", *cli_state)
    second = _run_json("up", *cli_state)
    status = _run_json("status", *cli_state)

    assert first["mqtt_url"] == f"mqtt://127.0.0.1:{mqtt_port}"
    assert first["influx_url"] == f"http://127.0.0.1:{influx_port}"
    assert all(s["running"] for s in first["services"])
    assert _pids(second) == _pids(first) == _pids(status)
    assert mqtt_answers(int(mqtt_port)) and not mqtt_connack(int(mqtt_port))  # no anonymous

    down = _run_json("down", *cli_state)
    assert not any(s["running"] for s in down["services"])
    assert all(not Path(f"/proc/{pid}").exists() for pid in _pids(first).values())
    assert not mqtt_answers(int(mqtt_port))


@pytest.mark.services
async def test_the_platform_adopts_what_services_up_started(
    cli_state: list[str], tmp_path: Path
) -> None:
    """`services up`, then `serve` on the same state folder: one broker, one influxd."""
    started = _run_json("up", *cli_state)
    assert started["state_dir"] == str(tmp_path)
    settings = Settings(state_dir=tmp_path, mqtt={"port": int(cli_state[3])},
                        influx={"port": int(cli_state[5])})
    stop = asyncio.Event()
    async with Platform(settings, serve_api=False) as platform:
        assert platform.ingestor is not None
        runner = asyncio.create_task(platform.run(stop))
        try:
            await platform.ingestor.wait_ready(30)  # logged in to the broker it adopted
            assert _pids(_run_json("status", *cli_state)) == _pids(started)
        finally:
            stop.set()
            await runner
    after = _run_json("status", *cli_state)  # the platform leaves what it adopted running
    assert _pids(after) == _pids(started) and all(s["running"] for s in after["services"])


def test_cli_status_table_when_stopped(cli_state: list[str]) -> None:
    result = runner.invoke(services_app, ["status", *cli_state])

    assert result.exit_code == 0
    assert "mosquitto" in result.stdout and "stopped" in result.stdout


def test_cli_missing_binary_names_the_install_command(cli_state: list[str]) -> None:
    result = runner.invoke(services_app, ["up", *cli_state, "--mosquitto-bin", "/nonexistent/x"])

    assert result.exit_code == 1
    assert "apt-get install -y mosquitto" in result.stderr
    assert not any(s["running"] for s in _run_json("status", *cli_state)["services"])
