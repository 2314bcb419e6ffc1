"""`urbanwatch city` and `urbanwatch simulate` through the command line."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import typer
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from tests.support.platform_run import running
from tests.support.polling import eventually
from urbanwatch.cli.simulate import broker_url, city, simulate
from urbanwatch.demo import import_city, stored_readings
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

app = typer.Typer()
app.command()(simulate)
app.command()(city)


def test_city_writes_geojson(tmp_path: Path) -> None:
    args = ["city", "--devices", "80", "--seed", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_devices"] == 80
    devices = json.loads((tmp_path / "devices.geojson").read_text())["features"]
    areas = json.loads((tmp_path / "areas.geojson").read_text())["features"]
    assert len(devices) == 80 and len(areas) == report["districts"] + report["cells"]


def test_simulate_prints_a_json_summary(mosquitto: Mosquitto, topic_prefix: str) -> None:
    args = [
        "simulate", "--devices", "50", "--duration", "2", "--rate", "200",
        "--mqtt-url", mosquitto.url, "--topic-prefix", topic_prefix, "--format", "senml",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["published"] > 0 and summary["published"] == summary["readings_sent"]
    assert summary["devices"] == 50 and summary["messages"] > 0
    assert summary["duration_s"] >= 2 and summary["rate"] > 0
    assert summary["qos"] == 1 and summary["format"] == "senml"


def test_simulate_without_a_broker_fails_with_a_reason(tmp_path: Path) -> None:
    args = ["simulate", "--duration", "1", "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}",
            "--state-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "cannot connect" in result.stderr and result.stdout == ""


def test_simulate_reads_broker_and_qos_from_the_config_file(
    mosquitto: Mosquitto, topic_prefix: str, tmp_path: Path
) -> None:
    config = tmp_path / "urbanwatch.toml"
    config.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\ntopic_prefix = "{topic_prefix}"\nqos = 0\n'
    )
    args = ["simulate", "--devices", "20", "--duration", "1", "--rate", "100"]
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["qos"] == 0 and summary["published"] > 0
    assert summary["mqtt_url"] == mosquitto.url and summary["topic_prefix"] == topic_prefix


def test_default_broker_is_the_managed_one() -> None:
    assert broker_url(Settings(mqtt={"port": 1234})) == "mqtt://127.0.0.1:1234"
    assert broker_url(Settings(mqtt={"url": "mqtt://u:p@h:1"})) == "mqtt://u:p@h:1"


def test_a_stopped_simulator_still_prints_what_it_published(
    mosquitto: Mosquitto, topic_prefix: str, tmp_path: Path
) -> None:
    """`demo` stops its simulator with SIGTERM (Ctrl-C reaches it as SIGINT): the summary it
    prints then is what the demo reports as published."""
    args = [sys.executable, "-m", "urbanwatch", "simulate", "--devices", "50", "--rate", "200",
            "--duration", "600", "--mqtt-url", mosquitto.url, "--topic-prefix", topic_prefix,
            "--state-dir", str(tmp_path)]
    received = threading.Event()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_connect = lambda c, *_: c.subscribe(f"{topic_prefix}city/#")
    watcher.on_message = lambda *_: received.set()
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    simulator = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert received.wait(60), "the simulator published nothing"
        simulator.send_signal(signal.SIGTERM)
        stdout, _ = simulator.communicate(timeout=60)
    finally:
        simulator.kill()
        watcher.loop_stop()
        watcher.disconnect()
    assert simulator.returncode == 0
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert 0 < summary["published"] <= summary["readings_sent"]
    assert summary["duration_s"] < 600


async def test_the_c_publisher_publishes_what_the_platform_stores(settings: Settings) -> None:
    """`--publisher c`: messages generated first, sent by the libmosquitto publisher with
    publish-time stamps; every acknowledged reading reaches InfluxDB through the platform."""
    await import_city(settings, n_devices=60, seed=5)
    args = ["simulate", "--publisher", "c", "--devices", "60", "--seed", "5", "--rate", "3000",
            "--duration", "2", "--mqtt-url", settings.mqtt.url or "",
            "--topic-prefix", settings.mqtt.topic_prefix, "--state-dir", str(settings.state_dir)]
    async with running(settings) as platform:
        assert platform.ingestor is not None and platform.influx is not None
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        counters = platform.ingestor.counters
        await eventually(lambda: counters.stored_readings >= summary["published"],
                         "every acknowledged reading stored", timeout_s=60)
        stored = await stored_readings(platform.influx)
    assert summary["publisher"] == "c" and summary["published"] == summary["readings_sent"]
    assert summary["published"] > 3000  # about 3,000 readings/s for 2 s
    assert stored == summary["published"] == counters.stored_readings
    assert sum(counters.rejected.values()) == 0  # stamped when sent: none too old or late


def test_the_c_publisher_refuses_senml(mosquitto: Mosquitto, tmp_path: Path) -> None:
    args = ["simulate", "--publisher", "c", "--duration", "1", "--format", "senml",
            "--mqtt-url", mosquitto.url, "--state-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "compact JSON" in result.stderr and result.stdout == ""
