"""One `urbanwatch serve` process per test, on the session's Mosquitto and influxd, with a
small registered city; plus the test's dead-letter listener."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.catalogue import load_catalogue
from ingest.config import MqttConfig
from simulators.city import City, build_city
from tests.support.platform_process import PlatformProcess, serving
from urbanwatch.demo import import_city
from urbanwatch.settings import Settings

N_DEVICES, CITY_SEED = 100, 11


@pytest.fixture
def city() -> City:
    return build_city(N_DEVICES, CITY_SEED, load_catalogue())


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[PlatformProcess]:
    """Registered devices and an MQTT session that already queues for the ingestor (as in
    production, where it outlives any one ingestor process); started and ready."""
    await import_city(settings, N_DEVICES, CITY_SEED)
    claim_session(settings)
    async with serving(PlatformProcess(settings, tmp_path / "serve.log")) as process:
        yield process


def claim_session(settings: Settings) -> None:
    """Create the ingestor's persistent session and subscriptions at the broker."""
    config = MqttConfig.from_url(settings.mqtt.url or "", client_id=settings.mqtt.client_id)
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.on_subscribe = lambda *_: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = config.session_expiry_s
    client.connect(config.host, config.port, clean_start=False, properties=props)
    client.loop_start()
    prefix = settings.mqtt.topic_prefix
    client.subscribe([(f"{prefix}city/+/+/{kind}", 1) for kind in ("data", "batch")])
    assert subscribed.wait(10), "the ingestor's session was not created"
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)
