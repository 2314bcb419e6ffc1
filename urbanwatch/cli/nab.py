"""`urbanwatch nab`: run an anomaly detector over a Numenta Anomaly Benchmark folder.

Each CSV (``timestamp,value``) is one series. By default every file is one ``weather`` device
(its ``temp_c`` series; the engine does not range-check, only the decoder does) of a registry fed
through the real ``rules.engine.engine.Engine``, with one rule ``anomaly(<detector>) > 1`` that
exposes the detector's score in ``engine.ctx.scores`` and never fires (so the engine marks no
reading as confirmed; the detector's own learning rules apply). The files are fed together in
batches (batch ``i`` holds row ``i`` of every file that long), so each series sees its rows in file
order, exactly as a stream. Rows are the unit of scoring, but the engine drops readings not newer
than the last one, so a duplicate or backward timestamp is fed 1 ms after its predecessor.
``--direct`` drives the detector without the engine (same rounds, raw timestamps).

The output is one ``timestamp,value,anomaly_score`` CSV per data file, in the layout
``shared/tools/nab_score.py`` reads (``OUT/<category>/<file>.csv``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import Progress

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detectors import DETECTORS
from rules.detectors.base import Detector, score_and_update
from rules.engine.engine import Engine
from rules.language.loader import load_rules
from urbanwatch.cli.options import ConfigFile, one_line_errors
from urbanwatch.settings import load_settings

DEVICE_TYPE, METRIC = "weather", "temp_c"


@dataclass(frozen=True)
class NabSeries:
    """One NAB data file: its path relative to the data folder, raw timestamps, ms and values."""

    name: str
    stamps: list[str]
    ts_ms: np.ndarray
    values: np.ndarray


def read_series(data_dir: Path) -> list[NabSeries]:
    """Read every ``<category>/<file>.csv`` under ``data_dir``, sorted by name."""
    series = []
    for path in sorted(data_dir.rglob("*.csv")):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or not {"timestamp", "value"} <= rows[0].keys():
            raise typer.BadParameter(f"{path}: expected columns timestamp,value")
        stamps = [r["timestamp"] for r in rows]
        ts = np.array([s.strip().replace(" ", "T") for s in stamps], dtype="datetime64[ms]")
        values = np.array([float(r["value"]) for r in rows], dtype=np.float64)
        name = path.relative_to(data_dir).as_posix()
        series.append(NabSeries(name, stamps, ts.astype(np.int64), values))
    return series


RoundScorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _feed(
    series: list[NabSeries], score_round: RoundScorer, ts_of: Callable[[NabSeries], np.ndarray],
    progress: Progress | None,
) -> list[np.ndarray]:
    """Feed row ``r`` of every series in round ``r``; ``score_round(i, ts, values)`` scores it."""
    lengths = np.array([len(s.values) for s in series])
    n_rounds = int(lengths.max(initial=0))
    ts = np.zeros((len(series), n_rounds), dtype=np.int64)
    vals = np.zeros((len(series), n_rounds))
    for i, s in enumerate(series):
        ts[i, : len(s.values)], vals[i, : len(s.values)] = ts_of(s), s.values
    scores = np.zeros((len(series), n_rounds))
    task = progress.add_task("scoring", total=n_rounds) if progress else None
    for r in range(n_rounds):
        idx = np.flatnonzero(lengths > r).astype(np.int64)
        scores[idx, r] = score_round(idx, ts[idx, r], vals[idx, r])
        if progress is not None and task is not None and r % 500 == 0:
            progress.update(task, completed=r)
    return [np.clip(scores[i, : len(s.values)], 0.0, 1.0) for i, s in enumerate(series)]


def run_detector(
    detector: Detector, series: list[NabSeries], progress: Progress | None = None
) -> list[np.ndarray]:
    """Score every row of every series directly, one detector slot per series."""
    detector.grow(len(series))

    def score_round(idx: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> np.ndarray:
        return score_and_update(detector, idx, ts, vals)

    return _feed(series, score_round, lambda s: s.ts_ms, progress)


def strictly_increasing(ts_ms: np.ndarray) -> np.ndarray:
    """``ts_ms`` with every stamp not after its predecessor moved to 1 ms after it."""
    i = np.arange(len(ts_ms), dtype=np.int64)
    return np.maximum.accumulate(ts_ms - i) + i  # out[i] = max(ts[i], out[i - 1] + 1)


def run_engine(
    detector: str, series: list[NabSeries], progress: Progress | None = None,
    timezone: str = "Asia/Shanghai",
) -> list[np.ndarray]:
    """Score every row through ``rules.engine.engine.Engine``, one device per series."""
    devices = [Device(f"nab-{i}", DEVICE_TYPE, "nab", 0.0, 0.0) for i in range(len(series))]
    registry = Registry.build(load_catalogue(), devices)
    rules = load_rules(
        f"rules:\n- id: nab-{detector}\n  category: device\n"
        f"  match: {{device_type: {DEVICE_TYPE}, metric: {METRIC}}}\n"
        f"  when: anomaly({detector}) > 1\n  severity: info\n"
    )
    engine = Engine(rules, registry, timezone=timezone)
    slot_of = np.array([registry.slot(d.id, METRIC) for d in devices], dtype=np.int64)

    def score_round(idx: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> np.ndarray:
        slots = slot_of[idx]
        if engine.evaluate(ReadingBatch.from_columns(slots, ts, vals), int(ts.max())):
            raise RuntimeError("the score-exposing rule fired")  # its condition is impossible
        return engine.ctx.scores[detector][engine.ctx.detector_rows[detector][slots]]

    out = _feed(series, score_round, lambda s: strictly_increasing(s.ts_ms), progress)
    if engine.stats.late or engine.stats.duplicate:
        raise RuntimeError(f"engine dropped readings: {engine.stats}")
    return out


def write_results(out_dir: Path, series: NabSeries, scores: np.ndarray) -> None:
    path = out_dir / series.name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score"])
        for stamp, value, score in zip(series.stamps, series.values, scores, strict=True):
            w.writerow([stamp, repr(float(value)), repr(float(score))])


def nab(
    data: Annotated[Path, typer.Option(help="NAB data folder (<category>/<file>.csv).")],
    out: Annotated[Path, typer.Option(help="Results folder to write.")],
    detector: Annotated[str, typer.Option(help="Detector name.")] = "combined",
    direct: Annotated[
        bool, typer.Option(help="Drive the detector directly instead of through the engine.")
    ] = False,
    config: ConfigFile = None,
) -> None:
    """Score a NAB data folder with one detector configuration; write NAB results CSVs."""
    if detector not in DETECTORS:
        raise typer.BadParameter(f"unknown detector {detector!r}; one of {sorted(DETECTORS)}")
    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory")
    with one_line_errors():
        timezone = load_settings(config).city.timezone
    series = read_series(data)
    with Progress() as progress:
        if direct:
            scores = run_detector(DETECTORS[detector](), series, progress)
        else:
            scores = run_engine(detector, series, progress, timezone)
    for s, sc in zip(series, scores, strict=True):
        write_results(out, s, sc)
    typer.echo(f"wrote {len(series)} results files to {out}")
