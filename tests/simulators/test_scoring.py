"""The scorer on hand-made truth and incidents with known answers."""

from __future__ import annotations

from dataclasses import replace

from simulators.scenarios.truth import EventTruth, FaultTruth, Truth
from simulators.scoring import RaisedAlert, RaisedIncident, score

MIN = 60_000
GAS = EventTruth(
    id="e1-gas_leak", kind="gas_leak", category="safety", min_severity="red",
    handler="gas-company", teams=("gas-emergency",), districts=("haidian",), cells=("g-0-0",),
    devices=("gs-0001", "gs-0002"), first_device="gs-0001", report_interval_s=30,
    onset_ms=10 * MIN, start_ms=15 * MIN, end_ms=50 * MIN,
)
FLOOD = EventTruth(
    id="e2-flood", kind="flood", category="flood", min_severity="orange",
    handler="water-authority", teams=("drainage-crew", "flood-control"), districts=("xicheng",),
    cells=("g-0-5",), devices=("wl-0001", "rg-0001"), first_device="wl-0001",
    report_interval_s=60, onset_ms=100 * MIN, start_ms=130 * MIN, end_ms=300 * MIN,
)
DROPOUT = FaultTruth("f3-dropout", "dropout", ("aq-0001",), 20 * MIN, 50 * MIN, True)
DUPLICATES = FaultTruth("f4-duplicates", "duplicates", ("ns-0001",), 20 * MIN, 80 * MIN, False)
TRUTH = Truth(seed=1, devices=100, start_ms=0, end_ms=10 * 60 * MIN, events=(GAS, FLOOD),
              faults=(DROPOUT, DUPLICATES))  # 1,000 device-hours


def _incident(iid: str, category: str, severity: int, at_ms: int, team: tuple[str, str],
              devices: tuple[str, ...] = (), grids: tuple[str, ...] = (),
              alerts: int = 1) -> RaisedIncident:
    return RaisedIncident(iid, category, severity, at_ms + 5_000, at_ms, *team,
                          devices=devices, grids=grids, alerts=alerts)


PERFECT = [
    _incident("in-1", "safety", 4, 15 * MIN + 30_000, ("gas-company", "gas-emergency"),
              ("gs-0001",), alerts=2),
    _incident("in-2", "flood", 3, 131 * MIN, ("water-authority", "drainage-crew"),
              grids=("g-0-5",), alerts=4),
    _incident("in-3", "device", 1, 31 * MIN, ("city-management", "field-maintenance"),
              ("aq-0001",)),
]
PERFECT_ALERTS = [RaisedAlert("al-1", "device-offline", "device", "aq-0001", 31 * MIN)]


def test_a_perfect_run_meets_every_target() -> None:
    card = score(TRUTH, PERFECT, PERFECT_ALERTS)
    assert (card.detected, card.detected_share, card.right_severity_share) == (2, 1.0, 1.0)
    assert card.latency_s_median == 45.0 and card.latency_intervals_median == 1.0
    assert (card.false_incidents, card.false_per_1000_device_hours) == (0, 0.0)
    assert (card.faults_handled_share, card.faults_reported, card.faults_expected_reported) == (
        1.0, 1, 1)
    assert (card.incidents_per_event, card.alerts_per_incident, card.right_team_share) == (
        1.0, 3.0, 1.0)
    assert all(t["met"] for t in card.targets.values()) and not card.missed


def test_an_empty_run_detects_nothing_and_misses_the_expected_fault_report() -> None:
    card = score(TRUTH, [], [])
    assert (card.detected, card.detected_share, card.missed) == (0, 0.0, ("e1-gas_leak",
                                                                           "e2-flood"))
    assert card.latency_s_median is None and card.incidents_per_event is None
    assert card.false_incidents == 0 and card.faults_handled_share == 0.5
    assert card.unhandled_faults == ("f3-dropout",)
    assert not card.targets["detected_share"]["met"]


def test_a_run_of_only_false_alarms_counts_them_and_the_faults_that_became_emergencies() -> None:
    false = [
        _incident("in-9", "environment", 2, 200 * MIN, ("environment-bureau", "env-monitoring"),
                  ("ns-0001",)),
        _incident("in-8", "fire", 3, 500 * MIN, ("fire-rescue", "fire-station"), ("sm-0009",)),
        _incident("in-7", "safety", 3, 30 * MIN, ("gas-company", "gas-emergency"),
                  ("gs-0099",)),  # in the gas leak's time, but not its devices
    ]
    card = score(TRUTH, false, [])
    assert card.detected == 0 and card.false_incidents == 3
    assert card.false_per_1000_device_hours == 3.0
    assert card.false_incident_ids == ("in-9", "in-8", "in-7")
    assert (card.fault_emergencies, card.faults_handled_share) == (0, 0.5)
    noisy = score(TRUTH, [_incident("in-6", "environment", 2, 60 * MIN,
                                    ("environment-bureau", "env-monitoring"), ("ns-0001",))], [])
    assert noisy.fault_emergencies == 1 and "f4-duplicates" in noisy.unhandled_faults


def test_a_wrong_category_or_team_is_not_right() -> None:
    wrong = [
        _incident("in-1", "fire", 4, 16 * MIN, ("fire-rescue", "fire-station"), ("gs-0001",)),
        _incident("in-2", "flood", 2, 131 * MIN, ("emergency-command", "ecc-duty"),
                  ("wl-0001",)),
    ]
    card = score(TRUTH, wrong, [])
    assert card.detected == 1 and card.missed == ("e1-gas_leak",)
    assert card.right_severity_share == 0.0 and card.right_team_share == 0.0


def test_an_event_beginning_after_the_run_is_not_scored_and_its_incidents_are_not_false() -> None:
    late = replace(FLOOD, id="e5-flood", onset_ms=590 * MIN, start_ms=610 * MIN,
                   end_ms=700 * MIN)
    truth = replace(TRUTH, events=(GAS, FLOOD, late))
    early_alarm = _incident("in-9", "flood", 3, 595 * MIN, ("water-authority", "drainage-crew"),
                            grids=("g-0-5",))
    card = score(truth, [*PERFECT, early_alarm], PERFECT_ALERTS)
    assert (card.events, card.events_after_run, card.detected_share) == (2, 1, 1.0)
    assert card.false_incidents == 0 and not card.missed


def test_a_fault_incident_stamped_just_before_the_fault_began_is_about_it() -> None:
    # following the readings, the incident takes its batch's `now`: 3 s before the reading
    # of the fault that raised it
    start = DROPOUT.start_ms
    device_incident = RaisedIncident("in-4", "device", 1, start - 3_000, start + 2_000,
                                     "city-management", "field-maintenance",
                                     devices=("aq-0001",))
    card = score(TRUTH, [*PERFECT[:2], device_incident], PERFECT_ALERTS)
    assert card.false_incidents == 0
    before = replace(device_incident, detected_ms=start - 60_000, opened_ms=start - 60_000)
    assert score(TRUTH, [*PERFECT[:2], before], PERFECT_ALERTS).false_incidents == 1


def test_a_run_scored_before_a_fault_ended_does_not_call_its_device_incident_false() -> None:
    stopped = TRUTH.reached(45 * MIN, 0, 60 * MIN)  # the dropout has not ended by then
    assert DROPOUT not in stopped.faults
    card = score(stopped, PERFECT, PERFECT_ALERTS, (*TRUTH.events, *TRUTH.faults))
    assert card.false_incidents == 0
    assert score(stopped, PERFECT, PERFECT_ALERTS, TRUTH.events).false_incidents == 1
