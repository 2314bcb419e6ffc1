"""The ground truth of a simulated run: what was injected, where and when, as a JSON file.

Events are emergencies the platform must report: their kind, the incident category and the
minimum severity expected, the handler and teams that should get them, the area, the affected
devices and when the hazard started (`start_ms`: the first affected sensor's signal meets the
kind's hazard level, e.g. 20 % LEL) and ended. Faults are sensor and network failures that must
not become emergencies; `expect_report` says whether the platform should report them as a
device fault (a dropout shorter than the offline limit need not be reported).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

VERSION = 1


@dataclass(frozen=True)
class EventTruth:
    id: str
    kind: str
    category: str
    min_severity: str  # blue / yellow / orange / red
    handler: str
    teams: tuple[str, ...]
    districts: tuple[str, ...]
    cells: tuple[str, ...]
    devices: tuple[str, ...]
    first_device: str
    report_interval_s: float  # of the first affected device
    onset_ms: int  # injection starts
    start_ms: int  # the hazard level is met at the first affected device
    end_ms: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultTruth:
    id: str
    kind: str  # stuck, drift, spike, dropout, gateway_offline, clock_skew, duplicates, garbage
    devices: tuple[str, ...]
    start_ms: int
    end_ms: int
    expect_report: bool
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Truth:
    seed: int
    devices: int
    start_ms: int
    end_ms: int
    events: tuple[EventTruth, ...] = ()
    faults: tuple[FaultTruth, ...] = ()
    holidays: tuple[str, ...] = ()  # local dates (ISO) inside the run
    version: int = VERSION

    @property
    def device_hours(self) -> float:
        return self.devices * (self.end_ms - self.start_ms) / 3_600_000

    def reached(self, until_ms: int, after_event_ms: int, after_fault_ms: int) -> Truth:
        """The truth of a run stopped at `until_ms`: the events whose hazard began at least
        `after_event_ms` before, the faults that ended (with `after_fault_ms`) by then."""
        until_ms = min(until_ms, self.end_ms)
        return replace(
            self, end_ms=until_ms,
            events=tuple(e for e in self.events if e.start_ms + after_event_ms <= until_ms),
            faults=tuple(f for f in self.faults if f.end_ms + after_fault_ms <= until_ms),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Truth:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise ValueError(f"not a version-{VERSION} truth file")
        try:
            events = tuple(EventTruth(**_tuples(e)) for e in raw.pop("events"))
            faults = tuple(FaultTruth(**_tuples(f)) for f in raw.pop("faults"))
            return cls(**{**raw, "holidays": tuple(raw.get("holidays", ()))},
                       events=events, faults=faults)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed truth file: {exc}") from exc

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def read(cls, path: Path) -> Truth:
        return cls.from_json(path.read_text())


def _tuples(row: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}
