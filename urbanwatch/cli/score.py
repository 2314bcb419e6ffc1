"""`urbanwatch score --truth FILE`: the scorecard of a simulated run against its ground truth.

Reads the incidents and alerts from the platform's SQL store (the state folder's database,
or `--db-url`) over the run's time span plus an hour, and scores them
(`simulators.scoring`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from simulators.scenarios.truth import Truth
from simulators.scoring import AFTER_EVENT_MS, AFTER_FAULT_MS, Scorecard, score
from urbanwatch.cli.options import AsJson, Database, Sessions, database_command
from urbanwatch.cli.simulate import start_ms
from urbanwatch.raised import raised
from urbanwatch.settings import Settings


@database_command
def score_command(
    truth: Annotated[Path, typer.Option("--truth", help="the run's ground truth (JSON)")],
    as_json: AsJson = False,
    until: Annotated[datetime | None, typer.Option(
        "--until", help="score a run stopped early: only what ended (plus its grace time) by "
        "this simulated time (UTC unless given)")] = None,
    *,
    db: Database,
) -> None:
    """Score the incidents and alerts the platform raised against a run's ground truth."""
    whole = expected = Truth.read(truth)
    if until is not None:
        expected = whole.reached(start_ms(until), AFTER_EVENT_MS, AFTER_FAULT_MS)

    async def work(_settings: Settings, sessions: Sessions) -> Scorecard:
        incidents, alerts = await raised(sessions, expected.start_ms,
                                         expected.end_ms + AFTER_FAULT_MS)
        return score(expected, incidents, alerts, (*whole.events, *whole.faults))

    card = db.run(work)
    if as_json:
        typer.echo(json.dumps(card.to_dict()))
        return
    for line in lines(card):
        typer.echo(line)


def lines(card: Scorecard) -> list[str]:
    out = [
        f"events detected (right category)  {card.detected}/{card.events} "
        f"({card.detected_share:.1%}), at least expected severity {card.right_severity_share:.1%}"
        + (f"; {card.events_after_run} more began after the run's end (not scored)"
           if card.events_after_run else ""),
        f"detection latency                 median {card.latency_s_median} s "
        f"({card.latency_intervals_median} report intervals), p95 {card.latency_s_p95} s "
        f"({card.latency_intervals_p95})",
        f"false incidents                   {card.false_incidents} in {card.device_hours:,.0f} "
        f"device-hours ({card.false_per_1000_device_hours} per 1,000)",
        f"faults handled as device faults   {card.faults_handled_share:.1%} of {card.faults} "
        f"(reported {card.faults_reported}/{card.faults_expected_reported} expected, "
        f"{card.fault_emergencies} became emergencies)",
        f"incidents per event               {card.incidents_per_event}",
        f"alerts per incident               {card.alerts_per_incident}",
        f"right team                        {card.right_team_share}",
    ]
    out += [f"  {kind}: {v['detected']}/{v['events']} detected, latency median "
            f"{v['latency_intervals_median']} intervals" for kind, v in card.per_kind.items()]
    out += [f"target {k}: {t['value']} vs {t['target']} {'met' if t['met'] else 'MISSED'}"
            for k, t in card.targets.items()]
    return out
