"""TLS with a CA made here: the managed broker's TLS listener, the platform's clients over it,
and the API over HTTPS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import uuid
from pathlib import Path

import httpx
import pytest

from api.security.principal import Role
from devices.credential_store import CredentialStore
from devices.registry import Device
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient
from tests.support.auth import SECRET, bearer
from tests.support.mqtt5 import Client, accepted
from tests.support.polling import eventually
from tests.support.tls import make_pki
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.platform import Platform
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import mqtt_answers
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings


@pytest.mark.timeout(180)
async def test_a_reading_travels_over_tls_and_clients_without_the_ca_are_refused(
    tmp_path: Path, influxd: Influxd, influx_db: InfluxClient, topic_prefix: str
) -> None:
    pki = make_pki(tmp_path / "pki")
    settings = Settings(
        state_dir=tmp_path,
        mqtt={"port": free_port(), "topic_prefix": topic_prefix, "tls_ca": pki.ca,
              "tls_cert": pki.cert, "tls_key": pki.key, "client_id": f"uw-{uuid.uuid4().hex}"},
        influx={"url": influxd.url, "database": influx_db.database},
        api={"port": free_port(), "tls_cert": pki.cert, "tls_key": pki.key, "secret_key": SECRET},
    )
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    sessions = create_session_factory(engine)
    await DeviceStore(sessions).add([Device("aq-1", "air_quality", "d1", 39.9, 116.4)])
    password = (await CredentialStore(sessions).issue(["aq-1"]))["aq-1"]
    await engine.dispose()
    stop = asyncio.Event()

    async with Platform(settings) as platform:  # starts the managed broker with TLS
        assert platform.ingestor is not None
        runner = asyncio.create_task(platform.run(stop))
        await platform.ingestor.wait_ready(timeout_s=20)
        port = settings.mqtt.port
        device = Client(port, "aq-1", password, tls_ca=str(pki.ca))
        assert not device.connect().is_failure
        topic = f"{topic_prefix}city/d1/aq-1/data"
        now_ms = int(time.time() * 1000)
        assert accepted(device.publish(topic, b'{"ts": %d, "m": {"pm25": 35.5}}' % now_ms))
        device.close()
        counters = platform.ingestor.counters
        await eventually(lambda: counters.stored_readings >= 1, "the reading to be stored")

        assert mqtt_answers(port, tls=True) and not mqtt_answers(port)  # no plain MQTT
        with pytest.raises(ssl.SSLCertVerificationError):  # a client trusting another CA
            _handshake(port, make_pki(tmp_path / "other").ca)
        _handshake(port, pki.ca)

        api = f"https://127.0.0.1:{settings.api.port}"
        await eventually(lambda: _https_ok(api, str(pki.ca)), "the API to answer over HTTPS")
        await _provision_and_retire_over_https(api, pki.ca, port)
        stop.set()
        await runner

    series = await influx_db.query("SELECT pm25 FROM air_quality WHERE device_id = 'aq-1'")
    assert [row[1:] for row in series[0]["values"]] == [[35.5]]
    assert sum(platform.ingestor.counters.rejected.values()) == 0


async def _provision_and_retire_over_https(api: str, ca: Path, port: int) -> None:
    """The platform wires the API's device writes to the broker: admitted, then cut off."""
    verify = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(base_url=api, verify=verify,
                                 headers=bearer(Role.operator)) as client:
        created = await client.post("/api/v1/devices", json={
            "id": "wl-7", "type": "water_level", "district": "d2", "lat": 39.9, "lon": 116.4})
        assert created.status_code == 201, created.text
        login = created.json()["mqtt"]
        device = Client(port, login["username"], login["password"], tls_ca=str(ca))
        await eventually(lambda: not device.connect().is_failure, "the new device admitted")
        retired = await client.post("/api/v1/devices/wl-7/retire")
        assert retired.status_code == 200
        await eventually(device.disconnected.is_set, "the retired device to be cut off")
        device.close()


def _handshake(port: int, ca: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), 5) as raw, context.wrap_socket(
        raw, server_hostname="127.0.0.1"
    ):
        pass


async def _https_ok(url: str, ca: str) -> bool:
    try:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as client:
            return (await client.get(f"{url}/healthz")).status_code == 200
    except httpx.ConnectError:
        return False
