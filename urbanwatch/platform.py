"""Wiring: managed services, SQL, the registry, ingest, and the API, started and stopped together.

    async with Platform(settings) as platform:
        await platform.run(stop_event)

Services given by URL are used as they are; missing URLs start the managed
Mosquitto / influxd under the state folder (reusing ones already running there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alerts.sql import outbox
from api.app import create_app
from api.context import AlertsPart, ApiContext, RulesPart, TokenPolicy
from api.metrics import MetricSources
from api.security.secret_key import resolve_secret_key
from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from devices.store import DeviceStore
from ingest.backoff import Backoff
from ingest.config import IngestConfig
from ingest.counters import IngestCounters
from ingest.errors import InfluxError
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.spool import Spool
from ingest.spooling_sink import SpoolingSink
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.readings import last_readings
from ingest.unknown_devices import UnknownDevices
from rules.language.pack_upgrade import follow_pack
from urbanwatch.alerting import Alerting, open_alerts
from urbanwatch.checkpoint import FILENAME
from urbanwatch.database import create_engine, create_session_factory, migrate, ping
from urbanwatch.judging import Judge
from urbanwatch.services.broker_auth import (
    client_settings,
    managed,
    managed_services,
    sync_broker_auth,
)
from urbanwatch.services.services import Services
from urbanwatch.settings import Settings

log = logging.getLogger(__name__)
REGISTRY_REFRESH_S = 5.0


@dataclass(frozen=True)
class Endpoints:
    mqtt_url: str
    influx_url: str
    db_url: str
    api_url: str


def endpoints(settings: Settings) -> Endpoints:
    return Endpoints(
        mqtt_url=settings.mqtt.url or f"mqtt://127.0.0.1:{settings.mqtt.port}",
        influx_url=settings.influx.url or f"http://127.0.0.1:{settings.influx.port}",
        db_url=settings.db_url,
        api_url=f"http://{settings.api.host}:{settings.api.port}",
    )


class Platform:
    """One running urbanwatch: ingest → (engine, alerts) with the API beside it."""

    def __init__(self, settings: Settings, *, serve_api: bool = True) -> None:
        self.settings = settings
        self.endpoints = endpoints(settings)
        self.catalogue = load_catalogue()
        self.registry = Registry(self.catalogue)
        self._serve_api = serve_api
        self._services: Services | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self.influx: InfluxClient | None = None
        self.ingestor: Ingestor | None = None
        self.sink: SpoolingSink | None = None
        self.judge: Judge | None = None
        self.alerting: Alerting | None = None
        self._api: uvicorn.Server | None = None

    async def __aenter__(self) -> Platform:
        try:
            await self._open()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        assert self._sessions is not None, "the platform is not open"
        return self._sessions

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest (and serve the API) until `stop` is set; then flush and stop."""
        assert self.ingestor and self.judge and self.alerting and self.sink, "not open"
        tasks = [
            asyncio.create_task(self.sink.run(stop), name="spool"),
            asyncio.create_task(self.ingestor.run(stop), name="ingest"),
            asyncio.create_task(self.judge.run(stop), name="rules"),
            asyncio.create_task(self.alerting.run(stop), name="alerts"),
            asyncio.create_task(self._refresh_registry(stop), name="registry"),
        ]
        if self._api is not None:
            tasks.append(asyncio.create_task(self._api.serve(), name="api"))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        stop.set()
        if self._api is not None:
            self._api.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await self.judge.checkpoint_logged()  # after ingest's last batch was judged
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise RuntimeError(f"{task.get_name()} failed: {result}") from result

    async def _open(self) -> None:
        s = self.settings
        await migrate(s.db_url)
        self._engine = create_engine(s.db_url)
        self._sessions = create_session_factory(self._engine)
        if s.mqtt.url is None or s.influx.url is None:
            self._services = managed_services(s)
            await self._sync_broker()  # users and ACLs in place before the broker starts
            await asyncio.to_thread(self._services.up)
        self.registry = await DeviceStore(self._sessions).load_registry(self.catalogue)
        self.influx = InfluxClient(
            self.endpoints.influx_url, s.influx.database, username=s.influx.username,
            password=s.influx.password, timeout_s=s.influx.timeout_s,
        )
        await self._ensure_influx_schema()
        ingest_config = IngestConfig.from_settings(client_settings(s, "ingest"))
        dispatch_mqtt = IngestConfig.from_settings(client_settings(s, "dispatch")).mqtt
        self.alerting = Alerting(self.sessions, lambda: self.registry, dispatch_mqtt, s.alerts)
        await self.alerting.start()
        rules_path = s.rules.path or s.state_dir / "rules.yaml"  # the API edits this copy
        if s.rules.path is None:
            await asyncio.to_thread(follow_pack, rules_path)  # seeded, or merged with a new pack
        self.judge = Judge(
            lambda: self.registry, self.alerting.handle, rules_path=rules_path,
            tick_s=s.rules.tick_s, utc_offset_h=s.rules.utc_offset_h,
            on_reset=self.alerting.close_rules, on_leave=self.alerting.close_devices,
            checkpoint_path=s.state_dir / FILENAME, checkpoint_s=s.rules.checkpoint_s,
        )
        await self.judge.restore(await self._last_readings(), open_alerts(self.alerting))
        counters = IngestCounters()
        self.sink = SpoolingSink(
            InfluxSink(self.influx, lambda: self.registry),
            Spool(s.state_dir / "spool", max_bytes=s.ingest.spool_max_bytes), counters,
            retry_initial_s=ingest_config.retry_initial_s, retry_max_s=ingest_config.retry_max_s,
        )
        store = DeviceStore(self.sessions)
        self.ingestor = Ingestor(
            ingest_config, lambda: self.registry, self.sink, on_batch=self._on_batch,
            counters=counters, unknown=UnknownDevices(store.existing_ids, self._load_devices),
        )
        if self._serve_api:
            self._api = self._api_server()

    async def _ensure_influx_schema(self) -> None:
        """Create the database and retention policies, waiting for an InfluxDB that is down."""
        assert self.influx is not None
        s, backoff = self.settings, Backoff(0.5, 30.0)
        while True:
            try:
                await self.influx.ensure_schema(s.influx.retention, s.influx.downsample_retention)
                return
            except InfluxError as exc:
                if not exc.retryable:
                    raise
                delay_s = backoff.next_s()
                log.warning("InfluxDB at %s is not answering (%s); retrying in %.1f s",
                            self.endpoints.influx_url, exc, delay_s)
                await asyncio.sleep(delay_s)

    async def _last_readings(self) -> ReadingBatch:
        """The newest stored reading of every series (empty, logged, if InfluxDB fails)."""
        assert self.influx is not None
        try:
            return await last_readings(self.influx, self.registry)
        except InfluxError as exc:  # staleness then counts from the next reading, as before
            log.error("last readings not read from InfluxDB (%s): devices silent since before "
                      "the restart are flagged only from the checkpoint's knowledge", exc)
            return ReadingBatch.empty()

    async def _close(self) -> None:
        if self.alerting is not None:
            await self.alerting.aclose()
        if self.influx is not None:
            await self.influx.aclose()
        if self._engine is not None:
            await self._engine.dispose()
        if self._services is not None:
            await asyncio.to_thread(self._services.__exit__)

    async def _on_batch(self, batch: ReadingBatch, now_ms: int) -> None:
        """Every stored batch is judged here before its messages are acknowledged."""
        assert self.judge is not None
        await self.judge.on_batch(batch, now_ms)

    async def _refresh_registry(self, stop: asyncio.Event) -> None:
        """Pick up devices added or changed in SQL (CLI, API) without a restart."""
        store = DeviceStore(self.sessions)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REGISTRY_REFRESH_S)
            if stop.is_set():
                return
            try:
                devices, _ = await store.list()
            except Exception as exc:  # keep ingesting with the snapshot we have
                log.warning("registry refresh failed: %s", exc)
                continue
            self._take_devices(devices)
            try:  # also catches devices and credentials written by other processes
                await self._sync_broker()
            except Exception as exc:  # the broker keeps the users and ACLs it has
                log.warning("broker users/ACL refresh failed: %s", exc)
            if self.alerting is not None:
                try:
                    await self.alerting.refresh_topology()
                except Exception as exc:  # keep the gateways/neighbours we have
                    log.warning("alert topology refresh failed: %s", exc)

    def _take_devices(self, devices: list[Device]) -> None:
        changed = [d for d in devices if self.registry.get(d.id) != d]
        if changed:
            self.registry = self.registry.updated(changed)
            log.info("registry: %d devices added or changed", len(changed))

    async def _sync_broker(self) -> None:
        """Install device and platform users + ACLs into the managed broker (SIGHUP if changed)."""
        if managed(self.settings) and await sync_broker_auth(self.settings, self.sessions):
            log.info("broker: users and ACLs reloaded")

    async def _devices_changed(self) -> None:
        """The API wrote devices or credentials: apply them in ingest, then at the broker."""
        await self._load_devices()
        await self._sync_broker()

    async def _load_devices(self, _found: object = None) -> None:
        """Take every stored device into the registry (ingest just met `_found` unknown)."""
        devices, _ = await DeviceStore(self.sessions).list()
        self._take_devices(devices)

    def _api_server(self) -> uvicorn.Server:
        assert self.influx and self.alerting and self.judge and self.ingestor, "not open"
        assert self.judge.rules_path is not None
        api = self.settings.api
        context = ApiContext(
            sessions=self.sessions, influx=self.influx, catalogue=self.catalogue,
            tokens=TokenPolicy(
                resolve_secret_key(api.secret_key, api.environment, self.settings.state_dir),
                access_ttl_s=api.access_token_ttl_s, refresh_ttl_s=api.refresh_token_ttl_s,
            ),
            alerts=AlertsPart(self.alerting.service, self.alerting.hub,
                              self.alerting.reload_routing),
            rules=RulesPart(self.judge.rules_path, lambda: self.registry,
                            utc_offset_h=self.settings.rules.utc_offset_h),
            metrics=MetricSources(self.ingestor.counters, self.judge, self._outbox_depth),
            probes={"mqtt": self._mqtt_ready, "influxdb": self.influx.ping, "sql": self._sql_ready},
            on_devices_changed=self._devices_changed,
        )
        config = uvicorn.Config(
            create_app(context), host=api.host, port=api.port,
            log_level="warning", lifespan="off",
            ssl_certfile=api.tls_cert, ssl_keyfile=api.tls_key,  # HTTPS when configured
        )
        return uvicorn.Server(config)

    async def _mqtt_ready(self) -> bool:
        return self.ingestor is not None and self.ingestor.connected

    async def _outbox_depth(self) -> int:
        async with self.sessions() as session:
            return await outbox.pending_count(session)

    async def _sql_ready(self) -> bool:
        return await ping(self.sessions)
