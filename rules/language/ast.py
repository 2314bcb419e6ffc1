"""The typed syntax tree of rule expressions, shared by the compiler (`rules.engine.compile`) and
the test oracle (`rules.oracles.engine`).

Every node is a frozen dataclass; ``walk`` visits a tree so that callers can ask what a rule
needs (window lengths, detectors, referenced rules) without knowing its shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

from rules.detection import Severity

WINDOW_FUNCTIONS = ("rate", "delta", "mean", "min", "max", "zscore")
# rate() has a value only over a window this well covered: two noisy readings a few seconds apart
# give a slope of any size, so a slope needs several readings spread over half the window.
RATE_MIN_READINGS = 3
RATE_MIN_SPAN = 0.5  # of the window, from the oldest to the newest reading in it
SCOPES = ("grid", "district", "neighbours")


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Value:
    """The series' current reading (its last one, at a tick)."""


@dataclass(frozen=True)
class Sev:
    level: Severity


@dataclass(frozen=True)
class Hour:
    """Local hour of day (0-23) of the evaluation time."""


@dataclass(frozen=True)
class Attr:
    """A per-device numeric attribute (e.g. a gauge's ``warning_level``).

    Where a device lacks it: ``default``, or NaN without one (every comparison is then false).
    """

    name: str
    default: float | None = None


@dataclass(frozen=True)
class Window:
    """``fn(window)`` over the series' readings with ts in (t - window_ms, t].

    ``rate`` is the least-squares slope of value over time, per second, of those readings; NaN
    (so the rule does not fire) unless there are at least ``RATE_MIN_READINGS`` of them spanning
    at least ``RATE_MIN_SPAN`` of the window.
    """

    fn: str
    window_ms: int


@dataclass(frozen=True)
class Stale:
    """True when the series was last heard from at least ``duration_ms`` before now.

    Heard from: a reading, or an out-of-range one (a broken sensor is not offline).
    """

    duration_ms: int


@dataclass(frozen=True)
class OutOfRange:
    """True while the series' latest out-of-range reading (a sensor fault ingest refused) is
    newer than its latest in-range one, or less than ``hold_ms`` old: it clears once the sensor
    reports in range again and the hold has passed, so a glitch is one alert, not a storm."""

    hold_ms: int


@dataclass(frozen=True)
class Stuck:
    """True when the value has not changed for at least ``window_ms`` (flatline)."""

    window_ms: int


@dataclass(frozen=True)
class Anomaly:
    """The named detector's score in [0, 1] for the series' latest reading."""

    detector: str


@dataclass(frozen=True)
class CountIn:
    """Series in the subject's grid / district / neighbouring cells where ``rule_id`` is firing."""

    scope: str
    rule_id: str


@dataclass(frozen=True)
class Unary:
    op: str  # "-" | "not"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / < <= > >= == != and or
    left: Node
    right: Node


@dataclass(frozen=True)
class IfElse:
    cond: Node
    then: Node
    other: Node


Node = (
    Num | Value | Sev | Hour | Attr | Window | Stale | OutOfRange | Stuck | Anomaly | CountIn
    | Unary | Binary | IfElse
)


def walk(node: Node) -> Iterator[Node]:
    """Yield ``node`` and all its descendants, depth first."""
    yield node
    for f in fields(node):
        child = getattr(node, f.name)
        if isinstance(child, Unary | Binary | IfElse | Num | Value | Sev | Hour | Attr | Window
                      | Stale | OutOfRange | Stuck | Anomaly | CountIn):
            yield from walk(child)


def count_ins(nodes: Iterable[Node]) -> list[CountIn]:
    """The distinct ``count_in`` terms among ``nodes`` (e.g. ``Rule.nodes()``), first use first."""
    return list(dict.fromkeys(n for n in nodes if isinstance(n, CountIn)))
