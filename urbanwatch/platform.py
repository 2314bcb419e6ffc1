"""Wiring: managed services, SQL, the registry, ingest, and the API, started and stopped together.

    async with Platform(settings) as platform:
        await platform.run(stop_event)

Services given by URL are used as they are; missing URLs start the managed
Mosquitto / influxd under the state folder (reusing ones already running there).
Every long-running task runs under `supervise`: a failure is logged, counted and
restarted, and `/readyz` shows the task down meanwhile.

A partitioned worker (`Partition`: `serve --partition k/N` or `--districts`) subscribes only
to its districts' topics, under an MQTT client id of its partition (so a restarted worker
resumes its own session); its ingest and engine know only its districts' devices (the
registry's series slots are the worker's own), while the alert service and the API see the
whole city. It needs the shared PostgreSQL store, over
which the alert decisions of all workers are taken one at a time from the stored state and
each worker's live stream follows the stored events of all (`urbanwatch.alerting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from types import TracebackType

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alerts.decisions.cap import CapContext
from alerts.decisions.page_text import PageContext
from alerts.sql import outbox
from api.app import create_app
from api.context import AlertsPart, ApiContext, BodyLimits, Bounds, RulesPart, TokenPolicy
from api.metrics import MetricSources
from api.photos import PhotoStore
from api.security.secret_key import resolve_secret_key
from api.stream_slots import StreamSlots
from devices import clock
from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.clock import ArrivalFrontier, ReadingClock
from devices.private_paths import private_dir
from devices.registry import Device, Registry
from devices.store import DeviceStore
from ingest.backoff import Backoff
from ingest.config import IngestConfig
from ingest.counters import IngestCounters
from ingest.deadletter import DeadLetter
from ingest.errors import InfluxError
from ingest.pipeline import Ingestor
from ingest.sink import InfluxSink
from ingest.spool import Spool
from ingest.spooling_sink import SpoolingSink
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.readings import last_readings
from ingest.unknown_devices import UnknownDevices
from rules.engine.restore import OpenAlert
from rules.language.pack_upgrade import follow_pack
from urbanwatch import long_lived
from urbanwatch.alerting import Alerting, open_alerts
from urbanwatch.checkpoint import ALIVE, FILENAME
from urbanwatch.database import create_engine, create_session_factory, migrate, ping
from urbanwatch.detection_journal import FILENAME as JOURNAL
from urbanwatch.judging import Judge
from urbanwatch.leadership import PartitionLease
from urbanwatch.partition import Partition, held_changes
from urbanwatch.services.broker_auth import (
    broker_auth_version,
    client_settings,
    managed,
    managed_services,
    sync_broker_auth,
)
from urbanwatch.services.port_check import check_ports
from urbanwatch.services.services import Services
from urbanwatch.settings import Settings
from urbanwatch.supervisor import TaskHealth, supervise

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

    def __init__(self, settings: Settings, *, serve_api: bool = True,
                 partition: Partition | None = None) -> None:
        if partition is not None:
            _check_shared_store(settings.db_url)
            mqtt = settings.mqtt.model_copy(
                update={"client_id": f"{settings.mqtt.client_id}-{partition.name}"})
            settings = settings.model_copy(update={"mqtt": mqtt})
        self.settings = settings
        self.partition = partition
        self.districts: tuple[str, ...] | None = None  # those subscribed to, when partitioned
        self.endpoints = endpoints(settings)
        self.catalogue = load_catalogue()
        self.registry = Registry(self.catalogue)
        # the devices whose readings this worker takes in and whose series its engine holds
        self.own_registry = self.registry
        self._serve_api = serve_api
        self._services: Services | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self.influx: InfluxClient | None = None
        self.ingestor: Ingestor | None = None
        self._new_ingestor: Callable[[], Ingestor] | None = None
        self._ingest_runs = 0
        self.tasks = TaskHealth()
        self.sink: SpoolingSink | None = None
        self.judge: Judge | None = None
        self.alerting: Alerting | None = None
        self._api: uvicorn.Server | None = None
        self._reading_clock: ReadingClock | None = None  # `now` follows the readings
        self._lease: PartitionLease | None = None  # partitioned: who ingests the partition
        self._led = False

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
        judge, alerting, sink = self.judge, self.alerting, self.sink
        assert self.ingestor and judge and alerting and sink, "not open"
        ingesting: dict[str, Callable[[], Awaitable[None]]] = {
            "spool": lambda: sink.run(stop),
            "ingest": lambda: self._ingest(stop),
            "rules": lambda: judge.run(stop),
        }
        jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "alerts": lambda: alerting.run(stop),
            "dispatch": lambda: alerting.dispatcher.run(stop),
            "registry": lambda: self._refresh_registry(stop),
        }
        if alerting.live_follower is not None:
            jobs["live"] = functools.partial(alerting.live_follower.run, stop)
        if managed(self.settings):
            jobs["broker-auth"] = lambda: self._follow_broker_auth(stop)
        if self._lease is None:
            jobs |= ingesting
        tasks = [asyncio.create_task(supervise(name, job, stop, self.tasks), name=name)
                 for name, job in jobs.items()]
        if self._lease is not None:  # partitioned: ingest while leading the partition
            tasks.append(asyncio.create_task(self._lead(self._lease, ingesting, stop),
                                             name="partition"))
        if self._api is not None:
            tasks.append(asyncio.create_task(self._run_api(self._api), name="api"))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        stop.set()
        if self._api is not None:
            self._api.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if self._lease is None or self._led:  # a standby's engine knows nothing to keep
            await judge.checkpoint_logged()  # after ingest's last batch was judged
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise RuntimeError(f"{task.get_name()} failed: {result}") from result

    async def _lead(self, lease: PartitionLease,
                    jobs: dict[str, Callable[[], Awaitable[None]]], stop: asyncio.Event) -> None:
        """Once this worker leads its partition: restore the engine from what was stored (a
        standby takes over where the leader stopped), then ingest until `stop` or until the
        lease is lost (then the worker stops: `urbanwatch.leadership`)."""
        assert self.judge is not None
        if not await lease.acquire(stop):
            return
        self._led = True
        if lease.took_over:  # this worker's own checkpoint predates the other's leadership
            stale = self.settings.state_dir / FILENAME
            if stale.exists():
                log.info("partition %s: took over, so the engine starts from what was stored, "
                         "not from this worker's older checkpoint", lease.name)
                stale.unlink()
            (self.settings.state_dir / ALIVE).unlink(missing_ok=True)  # the other one's run
        try:
            await self.judge.restore(await self._last_readings(), self._own_open_alerts())
            tasks = [asyncio.create_task(supervise(name, job, stop, self.tasks), name=name)
                     for name, job in jobs.items()]
            holding = asyncio.create_task(lease.hold(stop), name="lease")
            try:
                await asyncio.wait([holding, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.set()  # the lease lost or the worker stopping: flush, then stop
                await asyncio.gather(*tasks, return_exceptions=True)
                await holding  # raises LeaseLost when that is why
        finally:
            await lease.release()

    async def _open(self) -> None:
        s = self.settings
        if s.clock == "readings":  # before anything reads the time
            self._reading_clock = ReadingClock()
            clock.follow(self._reading_clock)
        await asyncio.to_thread(check_ports, s, api=self._serve_api)  # before starting anything
        private_dir(s.state_dir)  # secrets, the database, the spool: the owner's only
        await migrate(s.db_url)
        self._engine = create_engine(s.db_url)
        self._sessions = create_session_factory(self._engine)
        self.registry = await DeviceStore(self._sessions).load_registry(self.catalogue)
        await self._take_partition()  # a partition that owns nothing stops before services start
        if s.mqtt.url is None or s.influx.url is None:
            self._services = managed_services(s)
            await self._sync_broker()  # users and ACLs in place before the broker starts
            await asyncio.to_thread(self._services.up)
        username, password = self._influx_login()
        self.influx = InfluxClient(
            self.endpoints.influx_url, s.influx.database, username=username, password=password,
            timeout_s=s.influx.timeout_s,
        )
        await self._ensure_influx_schema()
        ingest = client_settings(s, "ingest")
        ingest_config = IngestConfig.from_settings(ingest)
        if self.districts is not None:
            ingest_config = replace(ingest_config,
                                    mqtt=replace(ingest_config.mqtt, districts=self.districts))
        dispatch_mqtt = IngestConfig.from_settings(client_settings(s, "dispatch")).mqtt
        cap = CapContext(sender=s.cap.sender, tz=s.city.timezone, sender_name=s.cap.sender_name,
                         language=s.cap.language, web=s.cap.web)
        paging = PageContext(tz=s.city.timezone, web=s.dashboard_url)
        self.alerting = Alerting(self.sessions, lambda: self.registry, dispatch_mqtt, s.alerts,
                                 journal_path=s.state_dir / JOURNAL, cap=cap, paging=paging,
                                 smtp=s.smtp, shared=_is_postgresql(s.db_url))
        await self.alerting.start()
        rules_path = s.rules.path or s.state_dir / "rules.yaml"  # the API edits this copy
        if s.rules.path is None:
            await asyncio.to_thread(follow_pack, rules_path)  # seeded, or merged with a new pack
            if self.partition is not None:
                log.warning("partition %s: rules in this worker's state folder (%s); give "
                            "every worker one shared rule file ([rules] path), or a rule "
                            "changed through one worker's API applies to that worker only",
                            self.partition.name, rules_path)
        self.judge = Judge(
            lambda: self.own_registry, self.alerting.handle, rules_path=rules_path,
            tick_s=s.rules.tick_s, timezone=s.city.timezone,
            on_reset=self.alerting.close_rules, on_leave=self.alerting.close_devices,
            checkpoint_path=s.state_dir / FILENAME, checkpoint_s=s.rules.checkpoint_s,
            observe=self._reading_clock.observe_many if self._reading_clock else None,
        )
        if self.partition is None:  # a partitioned worker restores once it leads
            await self.judge.restore(await self._last_readings(), self._own_open_alerts())
        else:
            self._lease = PartitionLease(self._engine, self.partition.name)
        counters = IngestCounters()
        self.sink = SpoolingSink(
            InfluxSink(self.influx, lambda: self.own_registry),
            Spool(s.state_dir / "spool", max_bytes=s.ingest.spool_max_bytes), counters,
            lambda: self.own_registry, dead_letter=self._dead_letter,
            retry_initial_s=ingest_config.retry_initial_s, retry_max_s=ingest_config.retry_max_s,
        )
        sink, store = self.sink, DeviceStore(self.sessions)
        frontier = ArrivalFrontier() if self._reading_clock else None  # kept across restarts
        unknown = UnknownDevices(store.existing_ids, self._load_devices)
        self._new_ingestor = lambda: Ingestor(
            ingest_config, lambda: self.own_registry, sink, on_batch=self._on_batch,
            counters=counters, unknown=unknown, frontier=frontier,
        )
        self.ingestor = self._new_ingestor()
        if self._serve_api:
            self._api = self._api_server()
        long_lived.settle()  # the registry, the engine, the app: built, and kept

    def _influx_login(self) -> tuple[str | None, str | None]:
        """The settings' InfluxDB login, or the managed influxd's own when it requires one."""
        s = self.settings
        managed_login = None
        if s.influx.url is None and self._services is not None:
            managed_login = self._services.influx.login()
        return managed_login or (s.influx.username, s.influx.password)

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
            return await last_readings(self.influx, self.own_registry)
        except InfluxError as exc:  # staleness then counts from the next reading, as before
            log.error("last readings not read from InfluxDB (%s): devices silent since before "
                      "the restart are flagged only from the checkpoint's knowledge", exc)
            return ReadingBatch.empty()

    async def _close(self) -> None:
        try:
            if self.judge is not None:  # after its running call, if any
                await asyncio.to_thread(self.judge.close)
            if self.alerting is not None:
                await self.alerting.aclose()
            if self.influx is not None:
                await self.influx.aclose()
            if self._engine is not None:
                await self._engine.dispose()
        finally:  # even when a stop cut short cancels the close: no orphaned servers
            if self._reading_clock is not None and clock.following() is self._reading_clock:
                clock.follow(None)
            if self._services is not None:
                await asyncio.shield(asyncio.to_thread(self._services.__exit__))

    async def _dead_letter(self, letter: DeadLetter) -> None:
        """Spool replay's letters go out on the ingestor's dead-letter connection."""
        assert self.ingestor is not None
        await self.ingestor.dead_letter(letter)

    async def _on_batch(self, batch: ReadingBatch, now_ms: int, faults: ReadingBatch) -> None:
        """Every stored batch (and its sensor faults) is judged before its messages are acked.

        Following the readings, `now` moves with the readings judged, not with those merely
        received: a device is stale only against readings the engine has seen (the judge
        moves the clock when the batch has its turn, see `Judge.on_batch`).
        """
        assert self.judge is not None
        await self.judge.on_batch(batch, now_ms, faults)

    async def _ingest(self, stop: asyncio.Event) -> None:
        """Ingest until `stop`; after a failure, with a new ingestor (the broker redelivers)."""
        assert self.ingestor is not None and self._new_ingestor is not None
        if self._ingest_runs:  # an ingestor runs once
            self.ingestor = self._new_ingestor()
        self._ingest_runs += 1
        await self.ingestor.run(stop)

    async def _refresh_registry(self, stop: asyncio.Event) -> None:
        """Pick up devices added or changed in SQL (CLI, API) without a restart.

        A failure ends the task (its supervisor restarts it); ingest keeps the snapshot it has.
        """
        store = DeviceStore(self.sessions)
        seen = None
        while True:
            version = await store.version()
            if version != seen:  # reading 10,000 devices holds up the loop: only after a write
                self._take_devices((await store.list())[0])  # the list not kept while waiting
                seen = version
            if self.alerting is not None:  # the gateways and neighbours alerts group with
                await self.alerting.refresh_topology()
            if await _stopped(stop, REGISTRY_REFRESH_S):
                return

    async def _follow_broker_auth(self, stop: asyncio.Event) -> None:
        """Install devices and credentials written by other processes into the managed broker."""
        seen = None
        while True:
            version = await broker_auth_version(self.sessions)
            if version != seen:  # rendering every device's login is not free: only after a write
                await self._sync_broker()
                seen = version
            if await _stopped(stop, REGISTRY_REFRESH_S):
                return

    def _take_devices(self, devices: list[Device]) -> None:
        changed = [d for d in devices if self.registry.get(d.id) != d]
        if changed:
            self.registry = self.registry.updated(changed)
            log.info("registry: %d devices added or changed", len(changed))
            if self.partition is None:
                self.own_registry = self.registry
            else:
                self._take_own_devices(changed)

    async def _take_partition(self) -> None:
        """The districts a partitioned worker subscribes to: its own of those stored (areas
        and devices' districts) now. One added later is taken at the worker's next start."""
        if self.partition is None:
            self.own_registry = self.registry
            return
        areas = await DeviceStore(self.sessions).list_areas()
        known = {a.district for a in areas} | {d.district for d in self.registry.devices.values()}
        self.districts = self.partition.own_districts(known)
        if not self.districts:
            raise PartitionError(
                f"partition {self.partition.name} owns none of the {len(known)} districts "
                "stored: import the city first (`urbanwatch devices import`), or run fewer "
                "partitions")
        self.own_registry = Registry.build(
            self.catalogue, self.partition.own_devices(self.registry.devices.values()))
        log.info("partition %s: districts %s, %d devices", self.partition.name,
                 ",".join(self.districts), len(self.own_registry.devices))

    def _take_own_devices(self, changed: list[Device]) -> None:
        assert self.partition is not None and self.districts is not None
        own = self.partition.own_devices(changed)
        unsubscribed = sorted({d.district for d in own} - set(self.districts))
        if unsubscribed:
            log.warning("partition %s: devices in new districts %s are judged once this "
                        "worker restarts (it subscribes at start)", self.partition.name,
                        ",".join(unsubscribed))
        taken = held_changes(self.own_registry, self.districts, changed)
        if taken:
            self.own_registry = self.own_registry.updated(taken)

    def _own_open_alerts(self) -> list[OpenAlert]:
        """The open alerts the engine seeds its rule state with: of its own devices only."""
        assert self.alerting is not None
        found = open_alerts(self.alerting)
        if self.partition is None:
            return found
        devices = self.own_registry.devices.values()
        areas = set(self.districts or ()) | {d.grid for d in devices if d.grid}
        return [a for a in found if self.own_registry.get(str(a.device_id)) is not None
                or (a.device_id is None and a.subject in areas)]

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
        api, log, judge, alerting = (self.settings.api, self.settings.log, self.judge,
                                     self.alerting)
        context = ApiContext(
            sessions=self.sessions, influx=self.influx, catalogue=self.catalogue,
            tokens=TokenPolicy(
                resolve_secret_key(api.secret_key, api.environment, self.settings.state_dir),
                access_ttl_s=api.access_token_ttl_s, refresh_ttl_s=api.refresh_token_ttl_s,
            ),
            alerts=AlertsPart(self.alerting.service, self.alerting.hub,
                              self.alerting.reload_routing, self.alerting.routing_path),
            rules=RulesPart(self.judge.rules_path, lambda: self.registry),
            timezone=self.settings.city.timezone,
            metrics=MetricSources(
                self.ingestor.counters, self.judge, self._outbox_depth, self.tasks,
                self.alerting.backlog, self.alerting.tally, self.alerting.hub,
                reloads={"rules": lambda: judge.reload_errors,
                         "routing": lambda: alerting.routing_errors},
                open_incidents=self.alerting.service.incidents,
            ),
            probes={"mqtt": self._mqtt_ready, "influxdb": self.influx.ping, "sql": self._sql_ready,
                    "alert-store": self.alerting.backlog.ready},
            degrading=frozenset({"influxdb"}),  # ingest spools until it is back
            on_devices_changed=self._devices_changed,
            body_limits=BodyLimits(api.max_body_bytes, api.max_import_bytes,
                                   api.body_timeout_s),
            bounds=Bounds(api.max_notes_per_incident, api.max_report_days, api.max_backtest_days),
            live_streams=StreamSlots(api.max_live_streams),
            photos=PhotoStore(self.settings.state_dir / "photos", api.max_photo_bytes),
            public_feed=api.public_warnings_feed,
        )
        config = uvicorn.Config(
            create_app(context), host=api.host, port=api.port, lifespan="off",
            # uvicorn's records go through the platform's log setup (text or JSON); with the
            # access log on, one line per request (uvicorn.access, at info)
            log_config=None, access_log=log.access,
            log_level="info" if log.access else log.level,
            ssl_certfile=api.tls_cert, ssl_keyfile=api.tls_key,  # HTTPS when configured
        )
        return uvicorn.Server(config)

    async def _run_api(self, api: uvicorn.Server) -> None:
        try:
            await api.serve()
        except SystemExit as exc:  # uvicorn's way to say it could not start; not ours to exit
            config = api.config
            raise RuntimeError(f"the API did not start on {config.host}:{config.port} "
                               "(its error is logged above)") from exc

    async def _mqtt_ready(self) -> bool:
        """Ingest's broker connections are up (a standby has none yet, and is ready to serve
        the API)."""
        if self._lease is not None and not self._lease.leading:
            return True
        return self.ingestor is not None and self.ingestor.connected

    async def _outbox_depth(self) -> int:
        async with self.sessions() as session:
            return await outbox.pending_count(session)

    async def _sql_ready(self) -> bool:
        return await ping(self.sessions)


class PartitionError(ValueError):
    """A partitioned worker cannot start as configured (the message says what to do)."""


def _is_postgresql(db_url: str) -> bool:
    return make_url(db_url).get_backend_name() == "postgresql"


def _check_shared_store(db_url: str) -> None:
    if not _is_postgresql(db_url):
        raise PartitionError(
            "partitioned workers share one PostgreSQL database: give --db-url "
            "postgresql+asyncpg://user@host/db (the same for every worker)")


async def _stopped(stop: asyncio.Event, wait_s: float) -> bool:
    """Wait up to `wait_s` for `stop`; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), wait_s)
    return stop.is_set()
