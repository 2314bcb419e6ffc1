"""Managed services: Mosquitto and influxd as processes, and the shared fixtures."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from devices.credentials import hash_password, password_line
from ingest.errors import InfluxError
from ingest.timeseries.client import InfluxClient
from tests.support.polling import WAIT_S, eventually
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.managed_service import MissingBinaryError, ServiceError, ServiceStartError
from urbanwatch.services.mosquitto import (
    MAX_PACKET_BYTES,
    MAX_QUEUED_BYTES,
    Mosquitto,
    TlsFiles,
    mqtt_connack,
)
from urbanwatch.services.ports import HOST, free_port
from urbanwatch.settings import Settings


def test_missing_influxd_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(MissingBinaryError, match=r"apt-get install -y influxdb"):
        Influxd(tmp_path, free_port(), binary=tmp_path / "influxd").start()


def test_generated_configs_bind_loopback(tmp_path: Path) -> None:
    influx_port, mqtt_port = free_port(), free_port()
    influx, broker = Influxd(tmp_path, influx_port), Mosquitto(tmp_path, mqtt_port)
    influx.dir.mkdir(parents=True)
    broker.dir.mkdir(parents=True)
    influx.write_config()
    broker.write_config()

    conf = influx.config_path.read_text()
    assert 'index-version = "tsi1"' in conf
    assert f'bind-address = "127.0.0.1:{influx_port}"' in conf
    assert 'bind-address = "127.0.0.1:' in conf.split("[meta]")[0]  # RPC moved off :8088
    assert "store-enabled = false" in conf
    assert conf.count("enabled = false") >= 5  # graphite, collectd, opentsdb, udp, monitor
    mconf = broker.config_path.read_text()
    assert f"listener {mqtt_port} 127.0.0.1\n" in mconf
    assert f"persistence_location {broker.dir}/\n" in mconf
    assert "max_queued_messages 1000000\n" in mconf
    assert f"max_packet_size {MAX_PACKET_BYTES}\n" in mconf  # larger: the sender is cut off
    assert f"max_queued_bytes {MAX_QUEUED_BYTES}\n" in mconf  # per client, at most
    assert "retain_available false\n" in mconf  # nothing stays on a topic for the next one
    assert "allow_anonymous false\n" in mconf
    assert f"password_file {broker.password_path}\n" in mconf
    assert f"acl_file {broker.acl_path}\n" in mconf
    assert broker.password_path.read_text() == broker.acl_path.read_text() == ""
    assert broker.password_path.stat().st_mode & 0o077 == 0  # owner-only


@pytest.mark.parametrize(("bind_host", "login"), [("127.0.0.1", False), ("0.0.0.0", True)],
                         ids=["loopback", "every-interface"])
def test_influxd_beyond_loopback_requires_a_login(
    tmp_path: Path, bind_host: str, login: bool
) -> None:
    influx = Influxd(tmp_path, free_port(), bind_host=bind_host)
    influx.dir.mkdir(parents=True)
    influx.write_config()
    conf = influx.config_path.read_text()
    assert f'bind-address = "{bind_host}:{influx.port}"' in conf.split("[http]")[1]
    assert f"auth-enabled = {'true' if login else 'false'}" in conf
    assert influx.require_login is login
    assert (influx.login() is not None) is login


async def test_influxd_with_auth_admits_only_the_platform_login(tmp_path: Path) -> None:
    """A real influxd with authentication on (on loopback here, to test it safely): its first
    admin is made at start, a query without the login is refused, and a restart keeps it."""
    influx = Influxd(tmp_path, free_port(), require_login=True)
    try:
        influx.start()
        login = influx.login()
        assert login is not None
        login_file = influx.dir / "admin-login.json"
        assert login_file.stat().st_mode & 0o777 == 0o600
        anonymous = InfluxClient(influx.url, "auth_test")
        with pytest.raises(InfluxError):
            await anonymous.ensure_schema()
        await anonymous.aclose()
        influx.restart()  # the admin exists now: the same login is checked, not made again
        async with InfluxClient(influx.url, "auth_test", username=login[0],
                                password=login[1]) as platform:
            await platform.ensure_schema()
            assert ["auth_test"] in (await platform.query("SHOW DATABASES"))[0]["values"]
        login_file.write_text(json.dumps({"username": login[0], "password": "not-it"}))
        with pytest.raises(ServiceError, match="has users, but the login"):
            influx.restart()
    finally:
        influx.stop()


def test_an_anonymous_broker_has_no_user_files(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, free_port(), allow_anonymous=True)
    broker.dir.mkdir(parents=True)
    broker.write_config()

    assert "allow_anonymous true\n" in broker.config_path.read_text()
    assert not broker.password_path.exists()
    with pytest.raises(ServiceError, match="anonymous"):
        broker.install_auth("", "")


def test_tls_listener_config(tmp_path: Path) -> None:
    tls = TlsFiles(cert=tmp_path / "s.pem", key=tmp_path / "s.key", ca=tmp_path / "ca.pem")
    for path in (tls.cert, tls.key, tls.ca):
        path.write_text(f"PEM of {path.name}")
    assert tls.ca is not None
    broker = Mosquitto(tmp_path, 18999, tls=tls)
    broker.write_config()

    conf = broker.config_path.read_text()
    assert "listener 18999 127.0.0.1\ncertfile " in conf
    if broker.user is None:  # the broker runs as us: it reads the operator's files
        assert f"certfile {tls.cert}\nkeyfile {tls.key}\ncafile {tls.ca}\n" in conf
    else:  # its own user reads copies of its own, whatever the originals' folders
        copies = [broker.dir / name for name in ("tls-cert.pem", "tls-key.pem", "tls-ca.pem")]
        assert f"certfile {copies[0]}\nkeyfile {copies[1]}\ncafile {copies[2]}\n" in conf
        assert [c.read_text() for c in copies] == ["PEM of s.pem", "PEM of s.key", "PEM of ca.pem"]
        assert {(c.stat().st_uid, c.stat().st_mode & 0o777) for c in copies} == {
            (broker.user.pw_uid, 0o600)}
    assert broker.url == "mqtts://127.0.0.1:18999"


async def test_started_as_root_the_broker_runs_as_its_own_user_even_under_a_private_home(
    tmp_path: Path,
) -> None:
    """The state folder lies in a folder only its owner may enter (like /root): the broker's
    files are where the broker's user reaches them, it runs as that user, and it works, also
    after reloading its files (read again as that user) and after a restart."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    broker = Mosquitto(home / "state" / "services", free_port())
    broker.install_auth(password_line("u1", hash_password("pw")), "user u1\ntopic readwrite x\n")
    try:
        broker.start()
        assert broker.pid is not None
        expected = os.getuid() if broker.user is None else broker.user.pw_uid
        assert _uid_of(broker.pid) == expected
        if broker.user is not None:
            assert "user mosquitto\n" in broker.config_path.read_text()
            assert not broker.dir.is_relative_to(home)
            assert (broker.dir.stat().st_uid, broker.dir.stat().st_mode & 0o777) == (
                broker.user.pw_uid, 0o700)
            assert (broker.dir / "origin").read_text() == f"{broker.origin}\n"
        for path in (broker.password_path, broker.acl_path, broker.config_path):
            assert path.stat().st_mode & 0o777 == 0o600, path
        _round_trip(broker, "u1", "pw")
        assert broker.install_auth(password_line("u2", hash_password("pw2")),
                                   "user u2\ntopic readwrite x\n")  # reloaded: SIGHUP
        await eventually(lambda: "Reloading config" in broker.log_path.read_text(), "reload")
        _round_trip(broker, "u2", "pw2")
    finally:
        broker.stop()
    broker.start()  # a restart finds its folder as it left it
    try:
        _round_trip(broker, "u2", "pw2")
    finally:
        broker.stop()


def _round_trip(broker: Mosquitto, username: str, password: str) -> None:
    """`username` logs in, subscribes to ``x`` and gets back what it publishes there."""
    subscribed, got = threading.Event(), threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{username}-test")
    client.username_pw_set(username, password)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: msg.payload == b"hi" and got.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe("x", qos=1)
        assert subscribed.wait(WAIT_S)
        client.publish("x", b"hi", qos=1)
        assert got.wait(WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_install_auth_rewrites_only_on_change(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, free_port())

    assert broker.install_auth("a:hash\n", "user a\n") is True
    assert broker.install_auth("a:hash\n", "user a\n") is False
    assert broker.install_auth("a:hash\n", "user a\ntopic write x\n") is True
    assert broker.acl_path.read_text() == "user a\ntopic write x\n"


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen()
        with pytest.raises(ServiceStartError, match="already in use"):
            Mosquitto(tmp_path, s.getsockname()[1]).start()


def test_early_exit_points_at_the_log(tmp_path: Path) -> None:
    svc = Mosquitto(tmp_path, free_port(), binary="false")

    with pytest.raises(ServiceStartError, match="exited with code 1") as info:
        svc.start()

    assert str(svc.log_path) in str(info.value)
    assert svc.pid is None


def test_two_influxd_run_side_by_side(tmp_path: Path, influxd: Influxd) -> None:
    other = Influxd(tmp_path, free_port())
    try:
        assert other.start() is True
        assert other.status().running and influxd.status().running
    finally:
        other.stop()
    assert not other.status().running


def test_restart_keeps_port_and_persistent_sessions(mosquitto: Mosquitto) -> None:
    """A QoS 1 message queued for an offline persistent session survives a broker restart."""
    topic = f"t{free_port()}/restart"
    received = threading.Event()

    def client(client_id: str, clean: bool) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=clean)
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        return c

    subscribed = threading.Event()
    sub = client(f"sub-{topic}", clean=False)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    sub.disconnect()
    sub.loop_stop()
    pub = client(f"pub-{topic}", clean=True)
    pub.publish(topic, b"kept", qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    old_pid = mosquitto.pid

    mosquitto.restart()

    assert mosquitto.pid != old_pid and mqtt_connack(mosquitto.port)
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{topic}",
                      clean_session=False)
    sub.on_message = lambda _c, _u, msg: msg.payload == b"kept" and received.set()
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    try:
        assert received.wait(10)
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_a_stopped_fixture_service_is_revived_after_the_test(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    assert not mosquitto.status().running


def test_the_previous_test_left_mosquitto_running(mosquitto: Mosquitto) -> None:
    assert mosquitto.status().running
    assert mqtt_connack(mosquitto.port)


async def test_settings_fixture_points_at_the_fixture_services(
    settings: Settings, influx_db: InfluxClient, mosquitto: Mosquitto, influxd: Influxd,
    topic_prefix: str, tmp_path: Path,
) -> None:
    assert settings.mqtt.url == mosquitto.url
    assert settings.influx.url == influxd.url
    assert settings.influx.database == influx_db.database
    assert settings.mqtt.topic_prefix == topic_prefix
    assert topic_prefix.startswith("t") and topic_prefix.endswith("/")
    assert settings.state_dir == tmp_path
    databases = await influx_db.query("SHOW DATABASES")
    assert [influx_db.database] in databases[0]["values"]
