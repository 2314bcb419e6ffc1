"""Ingest fixtures: a test registry, a device-side publisher, a dead-letter listener, and
running ingestors (all against the session Mosquitto / influxd of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from devices.catalogue import load_catalogue
from devices.clock import ArrivalFrontier
from devices.registry import Device, DeviceStatus, Registry
from ingest.config import IngestConfig
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.timeseries.client import InfluxClient
from tests.support.polling import WAIT_S
from urbanwatch.services.mosquitto import Mosquitto
from urbanwatch.settings import Settings


@pytest.fixture
def registry() -> Registry:
    return Registry.build(
        load_catalogue(),
        [
            Device("aq-1", "air_quality", "d1", 31.2, 121.4, grid="g1"),
            Device("aq-2", "air_quality", "d1", 31.2, 121.5, grid="g1"),
            Device("n-1", "noise", "d2", 31.3, 121.4, grid="g7"),
            Device("m-1", "noise", "d1", 31.3, 121.5, status=DeviceStatus.MAINTENANCE),
            Device("c-1", "noise", "d1", 31.3, 121.5, gateway="gw-1"),
        ],
    )


def _client(mosquitto: Mosquitto, client_id: str = "") -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    return client


class Publisher:
    """A device: publishes at QoS 1 and waits until the broker has each message."""

    def __init__(self, client: mqtt.Client, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def send(self, topic: str, payload: bytes | dict | list) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(self.prefix + topic, body, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"broker did not take {topic}"


@pytest.fixture
def publisher(mosquitto: Mosquitto, topic_prefix: str) -> Iterator[Publisher]:
    client = _client(mosquitto)
    yield Publisher(client, topic_prefix)
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()  # not left to the GC (eclipse-paho/paho.mqtt.python#627)


@dataclass
class Running:
    ingestor: Ingestor
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT_S)


StartIngestor = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_ingestor(
    settings: Settings, influx_db: InfluxClient, registry: Registry
) -> AsyncIterator[StartIngestor]:
    """Start an ingestor on the test's prefix; keyword arguments override `IngestConfig`.

    Every ingestor of one test uses the same client id, so a second one resumes the
    first one's MQTT session.
    """
    running: list[Running] = []

    async def start(on_batch: Any = None, frontier: ArrivalFrontier | None = None,
                    **overrides: Any) -> Running:
        config = IngestConfig.from_settings(settings, **overrides)
        ingestor = Ingestor(config, lambda: registry, InfluxSink(influx_db, lambda: registry),
                            on_batch=on_batch, frontier=frontier)
        stop = asyncio.Event()
        task = asyncio.create_task(ingestor.run(stop))
        await ingestor.wait_ready(WAIT_S)
        running.append(Running(ingestor, task, stop))
        return running[-1]

    yield start
    for r in running:
        if not r.task.done():
            await r.shutdown()

