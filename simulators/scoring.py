"""Score what the platform raised against a run's ground truth (pure: values in, a card out).

An incident *belongs to* an event when it opened between the event's onset and 30 minutes
after its end and shares a device with it, or (area rules name no device) one of its cells or,
failing both, a district. An event is *detected* when an incident of its category belongs to
it; latency runs from the event's hazard start to the start of the first alert of the first
such incident (the time of the readings that raised it: in a time-compressed run the
platform's own processing time would otherwise count `speed` times over), also counted in
report intervals of the event's first sensor. An incident that belongs to no event and is
not a device incident about a faulty device is *false*. A fault is *handled* when no
emergency (a non-device incident not explained by an event) involves its devices from its
start to an hour after its end, and, where the truth expects a report, a device-category
alert names one of its devices in that time. An incident is in a fault's time when it opened
or its first alert started in it: following the readings, the platform stamps an incident with
its batch's `now`, which may be a few seconds before the reading that raised it.

An event whose hazard begins only after the run's end (a short run, a long scenario) is not
scored: nothing could have detected it. It is counted in `events_after_run`, and its
incidents are not false.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from simulators.scenarios.truth import EventTruth, FaultTruth, Truth

SEVERITY_RANK = {"info": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
DEVICE = "device"
AFTER_EVENT_MS = 30 * 60_000
AFTER_FAULT_MS = 60 * 60_000
TARGETS = {  # key -> (target, higher is better)
    "detected_share": (0.95, True),
    "latency_intervals_median": (2.0, False),
    "false_per_1000_device_hours": (1.0, False),
    "faults_handled_share": (0.90, True),
    "incidents_per_event": (1.5, False),
    "right_team_share": (1.0, True),
}


@dataclass(frozen=True)
class RaisedIncident:
    id: str
    category: str
    severity: int  # 0 info .. 4 red, the highest it reached
    opened_ms: int
    detected_ms: int  # when its first alert started (the readings' time of the detection)
    handler: str | None  # of its first dispatch
    team: str | None
    devices: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()
    alerts: int = 1


@dataclass(frozen=True)
class RaisedAlert:
    id: str
    rule_id: str
    category: str
    device_id: str | None
    started_ms: int


@dataclass(frozen=True)
class Scorecard:
    events: int
    events_after_run: int
    detected: int
    detected_share: float
    right_severity_share: float
    latency_s_median: float | None
    latency_s_p95: float | None
    latency_intervals_median: float | None
    latency_intervals_p95: float | None
    incidents: int
    false_incidents: int
    device_hours: float
    false_per_1000_device_hours: float
    faults: int
    faults_handled_share: float
    faults_reported: int
    faults_expected_reported: int
    fault_emergencies: int
    incidents_per_event: float | None
    alerts_per_incident: float | None
    right_team_share: float | None
    per_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    missed: tuple[str, ...] = ()
    false_incident_ids: tuple[str, ...] = ()
    unhandled_faults: tuple[str, ...] = ()
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def belongs(incident: RaisedIncident, event: EventTruth) -> bool:
    if not event.onset_ms <= incident.opened_ms <= event.end_ms + AFTER_EVENT_MS:
        return False
    if incident.devices:
        return bool(set(incident.devices) & set(event.devices))
    if incident.grids:
        return bool(set(incident.grids) & set(event.cells))
    return bool(set(incident.districts) & set(event.districts))


def _about_fault(incident: RaisedIncident, fault: FaultTruth) -> bool:
    return (any(fault.start_ms <= t <= fault.end_ms + AFTER_FAULT_MS
                for t in (incident.opened_ms, incident.detected_ms))
            and bool(set(incident.devices) & set(fault.devices)))


def score(truth: Truth, incidents: list[RaisedIncident], alerts: list[RaisedAlert],
          also_explaining: tuple[EventTruth | FaultTruth, ...] = ()) -> Scorecard:
    """The scorecard; `also_explaining` are events and faults not scored (a run stopped before
    they could be judged) whose incidents are not false either."""
    after_run = tuple(e for e in truth.events if e.start_ms >= truth.end_ms)
    truth = replace(truth, events=tuple(e for e in truth.events if e not in after_run))
    events = (*truth.events, *after_run,
              *(e for e in also_explaining if isinstance(e, EventTruth)))
    faults = (*truth.faults, *(f for f in also_explaining if isinstance(f, FaultTruth)))
    matched = {e.id: [i for i in incidents if belongs(i, e)] for e in truth.events}
    explained = {i.id for i in incidents if any(belongs(i, e) for e in events)}
    explained |= {i.id for i in incidents if i.category == DEVICE
                  and any(_about_fault(i, f) for f in faults)}
    false = [i for i in incidents if i.id not in explained]
    latencies: list[float] = []
    intervals: list[float] = []
    right_severity = right_team = routed = 0
    per_kind: dict[str, dict[str, Any]] = {}
    missed = []
    for e in truth.events:
        right = [i for i in matched[e.id] if i.category == e.category]
        kind = per_kind.setdefault(e.kind, {"events": 0, "detected": 0, "latency_intervals": []})
        kind["events"] += 1
        if not right:
            missed.append(e.id)
            continue
        kind["detected"] += 1
        first = min(i.detected_ms for i in right)
        latencies.append((first - e.start_ms) / 1000)
        intervals.append(latencies[-1] / e.report_interval_s)
        kind["latency_intervals"].append(round(intervals[-1], 2))
        right_severity += max(i.severity for i in right) >= SEVERITY_RANK[e.min_severity]
        for i in right:
            routed += 1
            right_team += i.handler == e.handler and i.team in e.teams
    emergencies = [i for i in incidents if i.category != DEVICE and i.id not in explained]
    handled, reported, expected, fault_emergencies = 0, 0, 0, 0
    unhandled = []
    for f in truth.faults:
        emergency = any(_about_fault(i, f) for i in emergencies)
        report = any(a.category == DEVICE and a.device_id in f.devices
                     and f.start_ms <= a.started_ms <= f.end_ms + AFTER_FAULT_MS for a in alerts)
        fault_emergencies += emergency
        expected += f.expect_report
        reported += f.expect_report and report
        ok = not emergency and (report or not f.expect_report)
        handled += ok
        if not ok:
            unhandled.append(f.id)
    detected = len(latencies)
    event_incidents = [i for found in matched.values() for i in found]
    card = Scorecard(
        events=len(truth.events), events_after_run=len(after_run), detected=detected,
        detected_share=_share(detected, len(truth.events)),
        right_severity_share=_share(right_severity, detected),
        latency_s_median=_pct(latencies, 50), latency_s_p95=_pct(latencies, 95),
        latency_intervals_median=_pct(intervals, 50), latency_intervals_p95=_pct(intervals, 95),
        incidents=len(incidents), false_incidents=len(false),
        device_hours=round(truth.device_hours, 1),
        false_per_1000_device_hours=round(1000 * len(false) / truth.device_hours, 3)
        if truth.device_hours else 0.0,
        faults=len(truth.faults), faults_handled_share=_share(handled, len(truth.faults)),
        faults_reported=reported, faults_expected_reported=expected,
        fault_emergencies=fault_emergencies,
        incidents_per_event=round(routed / detected, 3) if detected else None,
        alerts_per_incident=round(sum(i.alerts for i in event_incidents)
                                  / len(event_incidents), 3) if event_incidents else None,
        right_team_share=round(right_team / routed, 3) if routed else None,
        per_kind={k: {**v, "latency_intervals_median": _pct(v["latency_intervals"], 50)}
                  for k, v in per_kind.items()},
        missed=tuple(missed), false_incident_ids=tuple(i.id for i in false),
        unhandled_faults=tuple(unhandled),
    )
    return _with_targets(card)


def _with_targets(card: Scorecard) -> Scorecard:
    targets = {}
    for key, (target, higher) in TARGETS.items():
        value = getattr(card, key)
        met = value is not None and (value >= target if higher else value <= target)
        targets[key] = {"value": value, "target": target, "met": met}
    return Scorecard(**{**asdict(card), "targets": targets})


def _share(n: int, total: int) -> float:
    return round(n / total, 4) if total else 1.0


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None
