"""Devices added while ingest runs (senders, and a gateway's children): looked up in SQL before
they are refused, misses cached."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from pathlib import Path

from devices.catalogue import load_catalogue
from devices.registry import Device
from devices.store import DeviceStore
from ingest.config import IngestConfig
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.timeseries.client import InfluxClient
from ingest.unknown_devices import UnknownDevices
from tests.ingest.conftest import Publisher
from tests.support.polling import WAIT_S, eventually
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.settings import Settings


class Stored:
    """Stands in for the SQL store in the pure tests: a set of ids, and the questions asked."""

    def __init__(self, *ids: str) -> None:
        self.ids, self.asked, self.found = set(ids), list[set[str]](), list[set[str]]()

    async def find(self, ids: Collection[str]) -> set[str]:
        self.asked.append(set(ids))
        return self.ids & set(ids)

    async def on_found(self, ids: set[str]) -> None:
        self.found.append(ids)


async def test_found_devices_are_handed_on_and_misses_are_asked_once_per_period() -> None:
    stored, now = Stored("new-1"), [0]
    unknown = UnknownDevices(stored.find, stored.on_found, forget_after_ms=5_000,
                             clock_ms=lambda: now[0])
    assert await unknown.look_up({"new-1", "ghost"}) == {"new-1"}
    assert stored.found == [{"new-1"}]
    for _ in range(100):  # a flood from the unknown id: no further queries
        assert await unknown.look_up({"ghost"}) == set()
    assert stored.asked == [{"new-1", "ghost"}]
    now[0] = 5_000  # forgotten: asked again (it may have been provisioned since)
    stored.ids.add("ghost")
    assert await unknown.look_up({"ghost"}) == {"ghost"}
    assert stored.asked[-1] == {"ghost"}


async def test_remembered_misses_are_bounded() -> None:
    stored = Stored()
    unknown = UnknownDevices(stored.find, stored.on_found, max_remembered=10)
    await unknown.look_up({f"ghost-{n}" for n in range(50)})
    assert unknown.remembered == 10


@contextlib.asynccontextmanager
async def ingesting(
    settings: Settings, influx_db: InfluxClient, tmp_path: Path, *known: Device
) -> AsyncIterator[tuple[DeviceStore, Ingestor]]:
    """An ingestor over a SQL device store holding `known`, which its registry starts with;
    devices added later reach the registry only through the unknown-device lookup."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'devices.db'}"
    await migrate(db_url)
    engine = create_engine(db_url)
    store = DeviceStore(create_session_factory(engine))
    await store.add(list(known))
    catalogue = load_catalogue()
    registry = [await store.load_registry(catalogue)]

    async def load(_found: set[str]) -> None:
        registry[0] = await store.load_registry(catalogue)

    config = IngestConfig.from_settings(settings, flush_interval_s=0.1)
    ingestor = Ingestor(config, lambda: registry[0], InfluxSink(influx_db, lambda: registry[0]),
                        unknown=UnknownDevices(store.existing_ids, load))
    stop = asyncio.Event()
    task = asyncio.create_task(ingestor.run(stop))
    try:
        await ingestor.wait_ready(WAIT_S)
        yield store, ingestor
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
        await engine.dispose()


async def test_first_reading_of_a_device_added_while_ingesting_is_stored(
    settings: Settings, influx_db: InfluxClient, publisher: Publisher, tmp_path: Path
) -> None:
    async with ingesting(settings, influx_db, tmp_path) as (store, ingestor):
        await store.add([Device("aq-new", "air_quality", "d1", 31.2, 121.4)])  # SQL only
        publisher.send("city/d1/aq-new/data", {"m": {"pm25": 12.5}})
        for _ in range(3):
            publisher.send("city/d1/ghost/data", {"m": {"pm25": 1.0}})
        counters = ingestor.counters
        await eventually(lambda: counters.received == 4 and counters.batches >= 1
                         and counters.stored_messages == 1, "the new device's reading stored")
        assert await influx_db.count("air_quality") == 1
        await eventually(lambda: counters.dead_lettered == 3, "the unknown device refused")
        assert counters.rejected == {"unknown_device": 3}


async def test_first_reading_of_a_child_added_while_ingesting_is_stored_from_its_gateways_batch(
    settings: Settings, influx_db: InfluxClient, publisher: Publisher, tmp_path: Path
) -> None:
    gateway = Device("gw-1", "weather", "d1", 31.2, 121.4)  # known: its topic asks nothing
    async with ingesting(settings, influx_db, tmp_path, gateway) as (store, ingestor):
        await store.add([Device("aq-child", "air_quality", "d1", 31.2, 121.4, gateway="gw-1")])
        publisher.send("city/d1/gw-1/batch", [{"bn": "urn:dev:aq-child:", "n": "pm25", "v": 9},
                                              {"bn": "", "n": "urn:dev:ghost:pm25", "v": 1}])
        counters = ingestor.counters
        await eventually(lambda: counters.received == 1 and counters.stored_readings == 1,
                         "the new child's reading stored")
        assert await influx_db.count("air_quality") == 1
        await eventually(lambda: counters.dead_lettered == 1, "the unknown child refused")
        assert counters.readings_rejected == {"unknown_device": 1} and not counters.rejected
