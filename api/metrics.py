"""Prometheus exposition of one app: ingest counters, engine timings, held detections,
supervised tasks, outbox depth, HTTP latency.

Every app has its own `CollectorRegistry` (several apps in one process, as in tests,
never clash). Ingest and engine figures are not copied into prometheus objects as they
change: collectors read the platform's own counters at scrape time, so the numbers on
`/metrics` are exactly what the ingestor counted. The outbox depth needs SQL, so it is
read (awaited) by the route just before rendering. HTTP latency is observed by
`HttpMetricsMiddleware`, labelled by route template (`/api/v1/devices/{device_id}`,
never the raw path) so label values stay few.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.channels.live import LiveHub
from alerts.channels.tally import EventTally
from alerts.model import Incident
from api.ops_metrics import OpsMetrics, ReloadFailures, stale_on_failure
from api.platform_stats import EngineStats, HeldDetectionStats, IngestStats, TaskStats
from api.probing import Probe
from devices.clock import now_ms

UNMATCHED_ROUTE = "unmatched"

# counter name (without _total) -> (snapshot key, help)
_INGEST_COUNTERS = {
    "urbanwatch_ingest_received_messages": ("received", "MQTT messages taken in"),
    "urbanwatch_ingest_redelivered_messages": (
        "redelivered", "Messages that came with the DUP flag (redelivered by the broker)"),
    "urbanwatch_ingest_stored_messages": ("stored_messages", "Messages whose readings are durable"),
    "urbanwatch_ingest_stored_readings": (
        "stored_readings", "Readings made durable (in InfluxDB, or spooled)"),
    "urbanwatch_ingest_points_rejected": (
        "points_rejected", "Readings InfluxDB refused for good (dead-lettered)"),
    "urbanwatch_ingest_dead_letters": ("dead_lettered", "Dead letters the broker took"),
    "urbanwatch_ingest_write_errors": ("write_errors", "Failed InfluxDB write attempts"),
    "urbanwatch_ingest_batches": ("batches", "Batches stored"),
    "urbanwatch_ingest_on_batch_errors": ("on_batch_errors", "Batches the rule engine failed on"),
    "urbanwatch_ingest_spooled_readings": (
        "spooled", "Readings written to the local spool while InfluxDB was unavailable"),
    "urbanwatch_ingest_replayed_readings": ("replayed", "Spooled readings InfluxDB has accepted"),
    "urbanwatch_ingest_replay_refused_readings": (
        "replay_refused", "Spooled readings InfluxDB refused for good on replay"),
    "urbanwatch_ingest_spool_full": (
        "spool_full", "Batches held (not acknowledged) because the spool was full or failing"),
    "urbanwatch_ingest_spool_corrupt_records_skipped": (
        "corrupt_records_skipped", "Torn or corrupt spool records skipped at start"),
    "urbanwatch_ingest_spool_unplaceable_records": (
        "unplaceable_records", "Spool records dead-lettered because their readings cannot be "
        "placed (e.g. version 1)"),
}


class TaskCollector(Collector):
    def __init__(self, stats: TaskStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("urbanwatch_task_up", "1 while a supervised task runs, by task",
                               labels=["task"])
        restarts = CounterMetricFamily("urbanwatch_task_restarts",
                                       "Restarts of a supervised task after it failed, by task",
                                       labels=["task"])
        for task, running in sorted(self._stats.up.items()):
            up.add_metric([task], float(running))
            restarts.add_metric([task], self._stats.restarts.get(task, 0))
        yield up
        yield restarts


@dataclass(frozen=True)
class MetricSources:
    """What the platform lets `/metrics` read; a process without a part leaves it out."""

    ingest: IngestStats | None = None
    engine: EngineStats | None = None
    outbox_depth: Callable[[], Awaitable[int]] | None = None  # notifications waiting
    tasks: TaskStats | None = None  # supervised platform tasks (also on /readyz)
    held: HeldDetectionStats | None = None  # detections waiting for the alert store
    tally: EventTally | None = None  # alerts raised/cleared, escalations, deliveries
    hub: LiveHub | None = None  # live-stream clients and dropped events
    reloads: Mapping[str, ReloadFailures] = field(default_factory=dict)  # "rules", "routing"
    open_incidents: Callable[[], Awaitable[Sequence[Incident]]] | None = None


class IngestCollector(Collector):
    def __init__(self, stats: IngestStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        snap = self._stats.snapshot()
        for name, (key, help_text) in _INGEST_COUNTERS.items():
            yield CounterMetricFamily(name, help_text, value=snap[key])
        rejected = CounterMetricFamily(
            "urbanwatch_ingest_rejected_messages", "Messages rejected whole, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(snap["rejected"].items()):
            rejected.add_metric([reason], count)
        yield rejected
        readings = CounterMetricFamily(
            "urbanwatch_ingest_rejected_readings",
            "Single readings refused (the rest of their message stored), by reason",
            labels=["reason"],
        )
        for reason, count in sorted(snap["readings_rejected"].items()):
            readings.add_metric([reason], count)
        yield readings
        yield GaugeMetricFamily("urbanwatch_ingest_lag_seconds",
                                "Stored-at minus received-at of the last batch's oldest message",
                                value=snap["last_batch_lag_ms"] / 1000)
        yield GaugeMetricFamily("urbanwatch_ingest_spool_bytes", "Size of the local spool",
                                value=snap["spool_bytes"])


class EngineCollector(Collector):
    def __init__(self, stats: EngineStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        s = self._stats
        yield SummaryMetricFamily("urbanwatch_engine_evaluate_seconds",
                                  "Rule engine time per stored batch", count_value=s.evaluations,
                                  sum_value=s.evaluate_s_total)
        yield SummaryMetricFamily("urbanwatch_engine_tick_seconds",
                                  "Rule engine time per periodic tick", count_value=s.ticks,
                                  sum_value=s.tick_s_total)


class HeldDetectionCollector(Collector):
    def __init__(self, stats: HeldDetectionStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        s = self._stats
        yield GaugeMetricFamily("urbanwatch_alerts_held_detections",
                                "Detections the alert store refused, held (and journaled) until "
                                "it takes them", value=s.size)
        yield CounterMetricFamily("urbanwatch_alerts_held_detections_dropped",
                                  "Held detections given up because the backlog was full",
                                  value=s.dropped)
        yield CounterMetricFamily("urbanwatch_alerts_store_failures",
                                  "Attempts to store detections that failed", value=s.failures)
        yield CounterMetricFamily("urbanwatch_alerts_rejected_detections",
                                  "Detections the alert store refused as data (logged whole and "
                                  "set aside, so the others go on)", value=s.rejected)


class Metrics:
    """The registry of one app and the instruments the app itself updates."""

    def __init__(self, sources: MetricSources, probes: Mapping[str, Probe] | None = None,
                 degrading: frozenset[str] = frozenset()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ops = OpsMetrics(
            self.registry, tally=sources.tally, hub=sources.hub, reloads=sources.reloads,
            probes=probes or {}, degrading=degrading, open_incidents=sources.open_incidents,
            clock_ms=now_ms,
        )
        self.http_latency = Histogram(
            "urbanwatch_http_request_duration_seconds", "HTTP request latency",
            ["method", "route", "status"], registry=self.registry,
        )
        if sources.ingest is not None:
            self.registry.register(IngestCollector(sources.ingest))
        if sources.engine is not None:
            self.registry.register(EngineCollector(sources.engine))
        if sources.tasks is not None:
            self.registry.register(TaskCollector(sources.tasks))
        if sources.held is not None:
            self.registry.register(HeldDetectionCollector(sources.held))
        self._outbox_depth = sources.outbox_depth
        self._outbox = None if sources.outbox_depth is None else Gauge(
            "urbanwatch_alerts_outbox_pending", "Notifications waiting in the outbox",
            registry=self.registry,
        )

    async def render(self) -> bytes:
        """The text exposition, with the outbox depth, incidents and dependencies read now."""
        await self.ops.refresh()
        if self._outbox_depth is not None and self._outbox is not None:
            with stale_on_failure("outbox depth"):
                self._outbox.set(await self._outbox_depth())
        return generate_latest(self.registry)


class HttpMetricsMiddleware:
    """Observes every HTTP request's latency by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.http_latency.labels(scope["method"], template, str(status[0])).observe(
                time.perf_counter() - started
            )


def install_metrics(app: FastAPI, sources: MetricSources, probes: Mapping[str, Probe] | None = None,
                    degrading: frozenset[str] = frozenset()) -> Metrics:
    """Give `app` its registry (`app.state.metrics`) and the HTTP latency middleware."""
    metrics = Metrics(sources, probes, degrading)
    app.state.metrics = metrics
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return metrics
