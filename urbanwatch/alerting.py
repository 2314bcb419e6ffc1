"""The alerts layer inside the platform: detections in, incidents dispatched, timers ticked.

Detections the alert store refuses (SQL busy or down) are held in a `DetectionBacklog` and
stored, in order, once it answers again; held ones are journaled to the state folder and stored
first at the next start. The dispatcher runs as its own supervised task.

Besides running the `AlertService` and its dispatcher (webhook, MQTT, SMS/voice gateways and,
with a mail server configured, e-mail), it keeps what the service decides with
up to date: the routing file (reloaded when its mtime changes; an invalid file is logged with
its lines and reasons and the running routing stays), the registry's gateways (an offline
gateway inhibits its children's offline alerts) and the stored geography's grid neighbours
(alerts in neighbouring cells group into one incident).

With `shared` (partitioned workers over one PostgreSQL store) the service decides from the
stored book each time (`alerts.pipeline`), and the live hub is fed from the stored live
events of every worker (`LiveFollower`) instead of straight after this worker's commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.base import Channel
from alerts.channels.dispatcher import Dispatcher, RetryPolicy
from alerts.channels.email import EmailChannel, SmtpServer
from alerts.channels.live import LiveHub
from alerts.channels.mqtt import MqttChannel
from alerts.channels.tally import EventTally
from alerts.channels.webhook import WebhookChannel
from alerts.decisions.cap import CapContext
from alerts.decisions.page_text import PageContext
from alerts.errors import RoutingError
from alerts.model import ACTIVE_ALERT_STATES, OPEN_ALERT_STATES, Alert
from alerts.routing import SHIPPED, RoutingConfig, RoutingSummary, load_routing
from alerts.service import AlertService
from alerts.sql import live_backlog, repository
from alerts.steps import EMAIL
from devices.clock import now_ms
from devices.errors import GeographyError
from devices.geo import Area, Geography
from devices.registry import DeviceStatus, Registry
from devices.store import DeviceStore
from ingest.config import MqttConfig
from rules.detection import Detection, Severity
from rules.engine.restore import OpenAlert
from urbanwatch.detection_backlog import DetectionBacklog
from urbanwatch.detection_journal import DetectionJournal
from urbanwatch.file_watch import FileWatch
from urbanwatch.live_follower import LiveFollower
from urbanwatch.settings import AlertsSettings, SmtpSettings

log = logging.getLogger(__name__)
RESET_REASON = "rule changed/removed"
LEFT_SERVICE = {DeviceStatus.MAINTENANCE: "device in maintenance",
                DeviceStatus.RETIRED: "device retired",
                DeviceStatus.ACTIVE: "device re-typed or moved: judged afresh"}
Neighbours = dict[str, frozenset[str]]


def _by_reason(registry: Registry, device_ids: Collection[str]) -> dict[str, frozenset[str]]:
    """The devices, by the reason their alerts close ("device in maintenance", ...)."""
    by_reason: dict[str, set[str]] = {}
    for device_id in device_ids:
        device = registry.get(device_id)
        reason = LEFT_SERVICE.get(device.status) if device is not None else None
        by_reason.setdefault(reason or "device out of service", set()).add(device_id)
    return {reason: frozenset(ids) for reason, ids in by_reason.items()}


def _of_devices(device_ids: frozenset[str]) -> Callable[[Alert], bool]:
    return lambda alert: alert.device_id in device_ids


def gateways_of(registry: Registry) -> dict[str, str]:
    """child device id → its gateway's device id."""
    return {d.id: d.gateway for d in registry.devices.values() if d.gateway}


def neighbours_of(geography: Geography | None) -> Neighbours:
    """grid cell id → the cells touching it."""
    if geography is None:
        return {}
    return {g.id: geography.neighbours(g.id) for g in geography.grids}


def channels(mqtt: MqttChannel, smtp: SmtpSettings | None) -> dict[str, Channel]:
    """The dispatcher's channels by name; SMS/voice gateways are webhooks with their own body,
    and e-mail is there when a mail server is configured."""
    webhook = WebhookChannel()
    out: dict[str, Channel] = {"webhook": webhook, "gateway": webhook, "mqtt": mqtt}
    if smtp is not None and smtp.host is not None:
        out["email"] = EmailChannel(SmtpServer(
            smtp.host, smtp.port, smtp.from_address, smtp.security, smtp.username,
            smtp.password, smtp.timeout_s,
        ))
    return out


def warn_unsendable(routing: RoutingConfig, known: Mapping[str, Channel]) -> None:
    """Log the policy steps that page over a channel this platform does not have (e-mail
    without a mail server): each such page would fail on its incident's timeline."""
    for policy in routing.policies:
        for step in policy.steps:
            for page in step.notify:
                if page.channel == EMAIL and EMAIL not in known:
                    log.warning("policy %s e-mails %s after %d s, but no mail server is set "
                                "([smtp] host): those e-mails will fail", policy.id, page.to,
                                step.after_s)


def open_alerts(alerting: Alerting) -> list[OpenAlert]:
    """The open alerts as the engine's seeding takes them (acknowledged counts as firing).

    Cleared alerts stay in the book until they close, but their condition no longer holds:
    seeded as pending, a rule with `for` would raise them again after every restart.
    """
    return [OpenAlert(a.rule_id, a.subject, a.device_id, a.metric,
                      firing=a.state in ACTIVE_ALERT_STATES, severity=int(a.severity),
                      since_ms=a.started_ms)
            for a in alerting.service.open_alerts() if a.state in OPEN_ALERT_STATES]


class Alerting:
    """Owns the `AlertService`, its dispatcher and channels for one platform run."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], registry: Callable[[], Registry],
        mqtt: MqttConfig, settings: AlertsSettings | None = None, *,
        clock_ms: Callable[[], int] = now_ms, journal_path: Path | None = None,
        cap: CapContext | None = None, paging: PageContext | None = None,
        smtp: SmtpSettings | None = None, shared: bool = False,
    ) -> None:
        self._sessions, self._registry, self._clock_ms = sessions, registry, clock_ms
        self.settings = settings or AlertsSettings()
        self.routing_path: Path | None = self.settings.routing_path
        self._routing_file = FileWatch(self.routing_path)
        self.routing_reloads = 0
        self.routing_errors = 0
        self.tally = EventTally()
        self.hub = LiveHub(tally=self.tally.count)
        self.live_follower = LiveFollower(sessions, self.hub) if shared else None
        own_hub = None if shared else self.hub  # shared: every event comes from the follower
        self.service = AlertService(
            sessions, load_routing(self.routing_path), device_types=_DeviceTypes(registry),
            locate=self._locate, hub=own_hub, cap=cap, paging=paging, shared=shared,
        )
        journal = DetectionJournal(journal_path) if journal_path is not None else None
        self.backlog = DetectionBacklog(self.service.handle, journal=journal)
        self._mqtt = MqttChannel(
            # one per process (a clean session): the workers of a standby pair share the
            # ingest client id, not this one
            mqtt.host, mqtt.port, prefix=mqtt.topic_prefix,
            client_id=f"{mqtt.client_id}-dispatch-{os.getpid()}",
            username=mqtt.username, password=mqtt.password, tls_ca=mqtt.tls_ca,
        )
        s = self.settings
        retry = RetryPolicy(
            base_ms=round(s.retry_base_s * 1000), max_delay_ms=round(s.retry_max_s * 1000),
            give_up_after_ms=round(s.give_up_after_s * 1000),
        )
        self._channels = channels(self._mqtt, smtp)
        self.dispatcher = Dispatcher(sessions, self._channels, retry=retry, hub=own_hub)
        warn_unsendable(self.service.routing, self._channels)
        self._retention = live_backlog.Retention(
            s.live_backlog_events, round(s.live_backlog_h * 3600_000)
        )
        self._topology: tuple[dict[str, str], Neighbours] | None = None
        self._areas: Sequence[Area] | None = None
        self._neighbours: Neighbours = {}

    async def start(self) -> None:
        """Load the open alerts, then store the detections held when the platform last stopped
        (before the engine is seeded with the open alerts, and before ingest starts)."""
        await self.service.restore()
        if self.backlog.load_journal():
            await self.backlog.flush()
        await self.refresh_topology()
        await self._mqtt.start()

    async def aclose(self) -> None:
        await self._mqtt.aclose()

    async def handle(self, found: list[Detection], now_ms: int) -> None:
        """Store `found`; if the store fails they are held and retried (see `run`)."""
        await self.backlog.put(found, now_ms)

    async def close_rules(self, rule_ids: Collection[str], now_ms: int) -> tuple[Alert, ...]:
        """Close the open alerts of rules a rule reload changed or removed."""
        closed = await self.service.close_open_alerts(
            lambda a: a.rule_id in rule_ids, RESET_REASON, now_ms)
        if closed:
            log.info("closed %d alerts of changed/removed rules %s", len(closed), sorted(rule_ids))
        return closed

    async def close_devices(self, device_ids: Collection[str], now_ms: int) -> tuple[Alert, ...]:
        """Close the open alerts of devices that left service (the engine no longer judges
        them, so nothing would report them cleared; back in service, they are judged afresh) or
        that were re-typed or moved (judged afresh from now on)."""
        closed: tuple[Alert, ...] = ()
        for reason, ids in _by_reason(self._registry(), device_ids).items():
            closed += await self.service.close_open_alerts(_of_devices(ids), reason, now_ms)
        if closed:
            log.info("closed %d alerts of devices out of service %s", len(closed),
                     sorted(device_ids)[:10])
        return closed

    async def run(self, stop: asyncio.Event) -> None:
        """Store held detections, follow the routing file, tick timers and prune the live
        backlog until `stop`.

        The timers wait while detections are held: the store is failing, and they would
        judge without them.
        """
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.tick_s)
            await self.reload_routing_if_changed()
            if await self.backlog.flush():
                await self.service.tick(self._clock_ms())
                await live_backlog.prune(self._sessions, self._retention, self._clock_ms())
        await self.backlog.flush()  # a last chance; what is still held stays in the journal

    # --- routing file ---------------------------------------------------------------------

    async def reload_routing(self) -> RoutingSummary:
        """Load the routing file now and put it in force (open incidents keep their teams).

        Raises:
            RoutingError: the file is unreadable or invalid (each problem with its line); the
                running routing stays.
        """
        self._routing_file.mark_seen()
        routing = await asyncio.to_thread(load_routing, self.routing_path)
        await self.service.set_routing(routing)
        warn_unsendable(routing, self._channels)
        self.routing_reloads += 1
        summary = RoutingSummary.of(routing, str(self.routing_path or SHIPPED))
        log.info("routing loaded from %s: %d handlers, %d teams, %d routes",
                 summary.source, summary.handlers, summary.teams, summary.routes)
        return summary

    async def reload_routing_if_changed(self) -> bool:
        """Reload when the routing file's mtime changed; an invalid file is logged and skipped."""
        if not self._routing_file.changed():
            return False
        try:
            await self.reload_routing()
        except RoutingError as exc:
            self.routing_errors += 1
            log.error("routing file not loaded, the previous routing stays: %s", exc)
            return False
        return True

    # --- topology -------------------------------------------------------------------------

    async def refresh_topology(self) -> None:
        """Feed the service the registry's gateways and the stored geography's neighbours."""
        areas = await DeviceStore(self._sessions).list_areas()
        if areas != self._areas:
            try:
                self._neighbours = neighbours_of(Geography.build(areas) if areas else None)
            except GeographyError as exc:  # keep grouping with the neighbours we have
                log.error("stored geography not usable for grouping: %s", exc)
            self._areas = areas
        topology = (gateways_of(self._registry()), self._neighbours)
        if topology != self._topology:
            await self.service.set_topology(*topology)
            self._topology = topology

    # --- queries --------------------------------------------------------------------------

    async def counts(self) -> tuple[int, int]:
        """(alerts, incidents) ever recorded."""
        async with self._sessions() as session:
            return await repository.count_recorded(session)

    async def open_incidents(self) -> dict[Severity, int]:
        """Incidents not yet closed or cancelled, by severity."""
        async with self._sessions() as session:
            return await repository.count_open_incidents(session)

    def _locate(self, device_id: str) -> tuple[float, float] | None:
        device = self._registry().get(device_id)
        return (device.lat, device.lon) if device else None


class _DeviceTypes(Mapping[str, str]):
    """device id -> type, read from the live registry snapshot (routing matches on it)."""

    def __init__(self, registry: Callable[[], Registry]) -> None:
        self._registry = registry

    def __getitem__(self, device_id: str) -> str:
        device = self._registry().get(device_id)
        if device is None:
            raise KeyError(device_id)
        return device.type

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry().devices)

    def __len__(self) -> int:
        return len(self._registry().devices)
