"""The engine's detectors: each keeps rows for the series its rules judge, scores, then learns.

A detector holds state only for its members (the slots of the per-series rules that use it):
``Context.detector_rows[name]`` maps a slot to its row, and rows are append-only, so a detector's
learned state stays valid when `rules.engine.engine.Engine.rebuild` hands it to a new engine.
In each round a detector scores the readings before it learns them, and does not learn from the
readings an ``anomaly()`` rule using it is firing on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rules.engine.compile import Context
from rules.errors import RuleError

if TYPE_CHECKING:  # rules.detectors is imported when an engine first needs it
    from rules.detectors.base import Detector

DetectorFactory = Callable[..., "Detector"]
CITY_TIMEZONE = "Asia/Shanghai"  # the default city's zone (as ``hour()``'s default offset)
Readings = tuple[np.ndarray, np.ndarray, np.ndarray]  # detector rows, ts_ms, values


def build_detectors(names: list[str], factories: Mapping[str, DetectorFactory] | None,
                    timezone: str = CITY_TIMEZONE) -> dict[str, Detector]:
    """A new detector for each of ``names``; ``factories`` default to `rules.detectors`.

    A factory taking a ``timezone`` argument (a detector that learns by local time) is given
    the city's.

    Raises:
        RuleError: a name has no factory.
    """
    if factories is None:
        from rules.detectors import DETECTORS

        factories = DETECTORS
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise RuleError(f"unknown detector(s) {unknown}; known: {sorted(factories)}")
    return {name: _build(factories[name], timezone) for name in names}


def _build(factory: DetectorFactory, timezone: str) -> Detector:
    try:
        local = "timezone" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a callable without an inspectable signature
        local = False
    return factory(timezone=timezone) if local else factory()


def place(detector: Detector, members: np.ndarray, n_slots: int, rows: np.ndarray | None,
          scores: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each slot's row in ``detector`` and each row's last score, after making room for members.

    The slots already in ``rows`` (a previous engine's map) keep their row and last score (from
    ``scores``); members new to the detector get the next rows, and the detector grows to match.
    """
    row_of = np.full(n_slots, -1, dtype=np.int32)
    if rows is not None:
        row_of[:len(rows)] = rows
    new = members[row_of[members] < 0]
    # the detector's size, orphaned rows included (a relocated slot's old row is never reused)
    n_old = len(scores) if scores is not None else int(row_of.max(initial=-1)) + 1
    row_of[new] = np.arange(n_old, n_old + len(new), dtype=np.int32)
    detector.grow(n_old + len(new))
    all_scores = np.zeros(n_old + len(new))
    if scores is not None:
        all_scores[:len(scores)] = scores
    return row_of, all_scores


@dataclass
class RoundScores:
    """Detector scores of one round's readings, and what each detector learns once it is judged.

    ``by_reading[name]`` has a score for every reading of the round (0 where the series is not a
    member); ``skip[name]`` marks the readings ``name`` must not learn from.
    """

    by_reading: dict[str, np.ndarray] = field(default_factory=dict)
    skip: dict[str, np.ndarray] = field(default_factory=dict)
    members: dict[str, tuple[np.ndarray, Readings]] = field(default_factory=dict)

    @classmethod
    def score(cls, detectors: Mapping[str, Detector], ctx: Context, slots: np.ndarray,
              ts_ms: np.ndarray, values: np.ndarray) -> RoundScores:
        """Score the round's readings with each detector and keep them in ``ctx.scores``."""
        out = cls()
        for name, detector in detectors.items():
            row = ctx.detector_rows[name][slots]
            sel = np.flatnonzero(row >= 0)
            if len(sel) == len(slots):  # every reading is a member (e.g. a city-wide rule)
                args = (row.astype(np.int64), ts_ms, values)
            elif len(sel):
                args = (row[sel].astype(np.int64), ts_ms[sel], values[sel])
            else:
                continue
            scores = detector.score(*args)
            ctx.scores[name][args[0]] = scores
            out.by_reading[name] = np.zeros(len(slots))
            out.by_reading[name][sel] = scores
            out.members[name] = (sel, args)
            out.skip[name] = np.zeros(len(slots), dtype=bool)
        return out

    def learn(self, detectors: Mapping[str, Detector]) -> None:
        """Let each detector learn the round's readings of its members, but the skipped ones."""
        for name, (sel, args) in self.members.items():
            detectors[name].update(*args, self.skip[name][sel])
