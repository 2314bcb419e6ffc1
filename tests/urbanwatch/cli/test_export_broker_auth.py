"""`urbanwatch devices export-broker-auth --format mosquitto`: the files a broker the city runs
itself needs, loaded into a real Mosquitto of the test's own: devices, teams and the platform's
login (whose password comes from a secret file) get exactly their topics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.routing import load_routing
from alerts.sql.team_logins import TeamLogins
from devices.credential_store import CredentialStore
from devices.registry import Device
from devices.store import DeviceStore
from tests.support.mqtt5 import NOT_AUTHORIZED, Client, accepted, received_so_far
from tests.support.polling import eventually
from urbanwatch.cli.app import app
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.services.mosquitto import Mosquitto

PLATFORM_PASSWORD = "a platform password: long & odd/chars"
DEVICES = [Device("aq-1", "air_quality", "d1", 39.9, 116.4),
           Device("aq-2", "air_quality", "d1", 39.9, 116.4)]


async def test_the_exported_files_run_an_external_broker(
    secured_mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, out = tmp_path / "state", tmp_path / "broker"
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'uw.db'}"
    await migrate(db_url)
    engine = create_engine(db_url)
    sessions = create_session_factory(engine)
    await DeviceStore(sessions).add(DEVICES)
    passwords = await CredentialStore(sessions).issue(d.id for d in DEVICES)
    team = await TeamLogins(sessions).issue("gas-emergency", load_routing())
    await engine.dispose()
    config = tmp_path / "urbanwatch.toml"
    config.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{secured_mosquitto.port}"\n'
                      'username = "uw-platform"\n')
    secret = tmp_path / "mqtt-password"
    secret.write_text(PLATFORM_PASSWORD + "\n")
    monkeypatch.setenv("URBANWATCH_MQTT__PASSWORD_FILE", str(secret))

    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "devices", "export-broker-auth", "--format", "mosquitto", "--out", str(out), "--json",
        "--state-dir", str(state), "--db-url", db_url, "--config", str(config)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"format": "mosquitto", "users": 4, "platform_user": True,
                       "password_file": str(out / "passwd"), "acl_file": str(out / "acl")}
    assert PLATFORM_PASSWORD not in result.output and (out / "passwd").stat().st_mode & 0o077 == 0
    secured_mosquitto.install_auth((out / "passwd").read_text(), (out / "acl").read_text())

    platform = Client(secured_mosquitto.port, "uw-platform", PLATFORM_PASSWORD)
    await eventually(lambda: not platform.connect().is_failure, "the broker to load the files")
    device = Client(secured_mosquitto.port, "aq-1", passwords["aq-1"])
    teams = Client(secured_mosquitto.port, team.username, team.password)
    try:
        assert not device.connect().is_failure and not teams.connect().is_failure
        platform.subscribe("city/#")
        teams.subscribe("dispatch/gas-emergency/#")
        assert accepted(device.publish("city/d1/aq-1/data"))
        assert device.publish("city/d1/aq-2/data") == NOT_AUTHORIZED
        assert accepted(platform.publish("dispatch/gas-emergency"))
        assert accepted(platform.publish("deadletter/aq-1"))
        assert [t for t, _ in received_so_far(platform, "deadletter/x")] == ["city/d1/aq-1/data"]
        assert teams.publish("dispatch/gas-emergency") == NOT_AUTHORIZED  # a team only reads
        message = teams.messages.get(timeout=10)
        assert message.topic == "dispatch/gas-emergency"
    finally:
        for client in (platform, device, teams):
            client.close()
    wrong = Client(secured_mosquitto.port, "uw-platform", "not it")
    assert wrong.connect().is_failure
    wrong.close()
