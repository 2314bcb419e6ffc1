"""What an operations center alerts on, for `/metrics`: alerts raised and cleared, open and
unacknowledged incidents, deliveries and escalations, dependencies up, the live stream, reload
failures, and the process and build.

Counters are read from the platform's own tallies at scrape time (`alerts.channels.tally`, the
live hub, the rule and routing runners); the incident gauges and the dependency probes need I/O,
so `OpsMetrics.refresh` reads them (awaited) just before the registry is rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Info, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.channels.live import LiveHub
from alerts.channels.tally import EventTally
from alerts.model import Incident, IncidentState
from api.probing import Probe, probe_all

log = logging.getLogger(__name__)
UNACKNOWLEDGED = frozenset({IncidentState.NEW, IncidentState.DISPATCHED})
NO_TEAM = "none"


ReloadFailures = Callable[[], int]  # failed reloads so far of a file the platform follows


class TallyCollector(Collector):
    def __init__(self, tally: EventTally, hub: LiveHub | None) -> None:
        self._tally, self._hub = tally, hub

    def collect(self) -> Iterator[Any]:
        t = self._tally
        yield _counter("urbanwatch_alerts_raised", "Alerts that started firing, by severity and "
                       "category", ["severity", "category"], t.alerts_raised)
        yield _counter("urbanwatch_alerts_cleared", "Alerts that cleared, by severity and "
                       "category", ["severity", "category"], t.alerts_cleared)
        yield _counter("urbanwatch_escalations", "Incidents escalated to the next level, by team",
                       ["team"], {(team,): n for team, n in t.escalations.items()})
        yield _counter("urbanwatch_deliveries", "Notification attempts, by channel and outcome "
                       "(published, delivered, retrying, failed)", ["channel", "outcome"],
                       t.deliveries)
        if self._hub is not None:
            yield GaugeMetricFamily("urbanwatch_live_clients", "Live-stream (WebSocket/SSE) "
                                    "subscribers connected", value=self._hub.subscribers)
            yield CounterMetricFamily("urbanwatch_live_dropped_events", "Live events a slow "
                                      "subscriber lost (it may catch up from the backlog)",
                                      value=self._hub.dropped)


class ReloadCollector(Collector):
    def __init__(self, reloads: Mapping[str, ReloadFailures]) -> None:
        self._reloads = reloads

    def collect(self) -> Iterator[Any]:
        yield _counter("urbanwatch_reload_failures", "Reloads of a changed rule or routing "
                       "file that failed (the running version stays), by file", ["file"],
                       {(name,): failures() for name, failures in self._reloads.items()})


def _counter(name: str, help_text: str, labels: list[str],
             values: Mapping[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=labels)
    for key, count in sorted(values.items()):
        family.add_metric(list(key), count)
    return family


class OpsMetrics:
    """The operations-center figures of one app's registry."""

    def __init__(
        self, registry: CollectorRegistry, *, tally: EventTally | None, hub: LiveHub | None,
        reloads: Mapping[str, ReloadFailures], probes: Mapping[str, Probe],
        degrading: frozenset[str],
        open_incidents: Callable[[], Awaitable[Sequence[Incident]]] | None,
        clock_ms: Callable[[], int],
    ) -> None:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        Info("urbanwatch_build", "The running urbanwatch", registry=registry).info(
            {"version": _version()})
        if tally is not None:
            registry.register(TallyCollector(tally, hub))
        if reloads:
            registry.register(ReloadCollector(reloads))
        self._probes, self._degrading = probes, degrading
        self._open_incidents, self._clock_ms = open_incidents, clock_ms
        self._up = Gauge("urbanwatch_dependency_up", "1 while a dependency answers",
                         ["dependency"], registry=registry)
        self._degraded = Gauge("urbanwatch_degraded", "1 while a dependency the platform rides "
                               "out is down (InfluxDB: readings are spooled)", registry=registry)
        by = ["severity", "team"]
        self._open = Gauge("urbanwatch_incidents_open", "Open incidents", by, registry=registry)
        self._unacked = Gauge("urbanwatch_incidents_unacknowledged", "Open incidents nobody has "
                              "acknowledged yet", by, registry=registry)
        self._oldest = Gauge("urbanwatch_incidents_unacknowledged_oldest_age_seconds", "Age of "
                             "the oldest unacknowledged incident", by, registry=registry)

    async def refresh(self) -> None:
        """Ask the dependencies and read the open incidents, for the scrape being served."""
        up = await probe_all(self._probes)
        for name, answers in up.items():
            self._up.labels(name).set(float(answers))
        self._degraded.set(float(any(not up[n] for n in self._degrading if n in up)))
        if self._open_incidents is not None:
            with stale_on_failure("open incidents"):
                self._set_incidents(await self._open_incidents(), self._clock_ms())

    def _set_incidents(self, incidents: Sequence[Incident], now_ms: int) -> None:
        for gauge in (self._open, self._unacked, self._oldest):
            gauge.clear()  # a severity or team with no incident left drops out
        oldest: dict[tuple[str, str], int] = {}
        for i in incidents:
            labels = (i.severity.name.lower(), i.team_id or NO_TEAM)
            self._open.labels(*labels).inc()
            if i.state in UNACKNOWLEDGED:
                self._unacked.labels(*labels).inc()
                oldest[labels] = min(oldest.get(labels, i.opened_ms), i.opened_ms)
        for labels, opened_ms in oldest.items():
            self._oldest.labels(*labels).set(max(0, now_ms - opened_ms) / 1000)


@contextmanager
def stale_on_failure(what: str) -> Iterator[None]:
    """A figure that needs SQL keeps its last value while SQL is down: the scrape still answers
    (`urbanwatch_dependency_up{dependency="sql"}` says why it is stale)."""
    try:
        yield
    except Exception as exc:
        log.warning("metrics: %s not read (%s: %s); the last value stays", what,
                    type(exc).__name__, exc)


def _version() -> str:
    try:
        return version("urbanwatch")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"
