"""`urbanwatch nab`: run an anomaly detector over a Numenta Anomaly Benchmark folder.

Each CSV (``timestamp,value``) is one series. Every file gets its own slot of one vectorized
detector, and the files are fed together in rounds (round ``i`` holds row ``i`` of every file
that long), so each series sees its rows in file order, exactly as a stream. Rows are the unit:
duplicate or backward timestamps are fed as they come. The output is one
``timestamp,value,anomaly_score`` CSV per data file, in the layout
``shared/tools/nab_score.py`` reads (``OUT/<category>/<file>.csv``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import Progress

from rules.detectors import DETECTORS
from rules.detectors.base import Detector, score_and_update


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


def run_detector(
    detector: Detector, series: list[NabSeries], progress: Progress | None = None
) -> list[np.ndarray]:
    """Score every row of every series, one slot per series, fed in rounds of one row each."""
    detector.grow(len(series))
    lengths = np.array([len(s.values) for s in series])
    n_rounds = int(lengths.max(initial=0))
    ts = np.zeros((len(series), n_rounds), dtype=np.int64)
    vals = np.zeros((len(series), n_rounds))
    for i, s in enumerate(series):
        ts[i, : len(s.values)], vals[i, : len(s.values)] = s.ts_ms, s.values
    scores = np.zeros((len(series), n_rounds))
    task = progress.add_task("scoring", total=n_rounds) if progress else None
    for r in range(n_rounds):
        slots = np.flatnonzero(lengths > r).astype(np.int64)
        scores[slots, r] = score_and_update(detector, slots, ts[slots, r], vals[slots, r])
        if progress is not None and task is not None and r % 500 == 0:
            progress.update(task, completed=r)
    return [np.clip(scores[i, : len(s.values)], 0.0, 1.0) for i, s in enumerate(series)]


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
) -> None:
    """Score a NAB data folder with one detector configuration; write NAB results CSVs."""
    if detector not in DETECTORS:
        raise typer.BadParameter(f"unknown detector {detector!r}; one of {sorted(DETECTORS)}")
    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory")
    series = read_series(data)
    with Progress() as progress:
        scores = run_detector(DETECTORS[detector](), series, progress)
    for s, sc in zip(series, scores, strict=True):
        write_results(out, s, sc)
    typer.echo(f"wrote {len(series)} results files to {out}")
