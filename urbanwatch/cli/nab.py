"""`urbanwatch nab`: the shipped pack's ``anomaly`` rule over a Numenta Anomaly Benchmark folder.

Each CSV (``timestamp,value``) is one series: one device of a type, and one metric, that the
shipped ``anomaly`` rule matches, in a registry fed through the real
``rules.engine.engine.Engine`` with that rule exactly as ``rules/packs/default.yaml`` writes it
(its detector, threshold and clear condition). The files are fed together in batches (batch ``i``
holds row ``i`` of every file that long), so each series sees its rows in file order, exactly as
a stream. Rows are the unit of scoring, but the engine drops readings not newer than the last
one, so a duplicate or backward timestamp is fed 1 ms after its predecessor. NAB's stamps are
naive: they are read as UTC and the engine's city time zone is UTC, so local time is the stamp.

The output is one ``timestamp,value,anomaly_score,alert`` CSV per data file, in the layout
``shared/tools/nab_score.py`` reads (``OUT/<category>/<file>.csv``): ``anomaly_score`` is the
rule's detector score of the row, ``alert`` is 1 on the rows where the rule starts firing (what
an operator is sent), else 0. Score ``alert`` with ``nab_score.py --mode alert``; a threshold
swept over ``anomaly_score`` is only a ceiling, since the shipped rule does not sweep.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import Progress

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detection import DetectionState
from rules.engine.engine import Engine
from rules.engine.scoring import DetectorFactory
from rules.language import ast
from rules.language.loader import load_default_pack
from rules.language.model import Rule

RULE_ID = "anomaly"
NAB_TIMEZONE = "UTC"


@dataclass(frozen=True)
class NabSeries:
    """One NAB data file: its path relative to the data folder, raw timestamps, ms and values."""

    name: str
    stamps: list[str]
    ts_ms: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class NabResult:
    """What the shipped rule made of one file: the detector's score and the alert per row."""

    scores: np.ndarray
    alerts: np.ndarray


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


def strictly_increasing(ts_ms: np.ndarray) -> np.ndarray:
    """``ts_ms`` with every stamp not after its predecessor moved to 1 ms after it."""
    i = np.arange(len(ts_ms), dtype=np.int64)
    return np.maximum.accumulate(ts_ms - i) + i  # out[i] = max(ts[i], out[i - 1] + 1)


def shipped_rule() -> Rule:
    """The shipped pack's ``anomaly`` rule, as written."""
    return next(r for r in load_default_pack() if r.id == RULE_ID)


def matched_series(rule: Rule) -> tuple[str, str]:
    """A (device type, metric) of the catalogue that ``rule`` judges."""
    catalogue = load_catalogue()
    for device_type in rule.match.device_type or sorted(catalogue):
        metrics = catalogue[device_type].metrics
        for metric in rule.match.metric or sorted(metrics):
            if metric in metrics:
                return device_type, metric
    raise ValueError(f"rule {rule.id!r} matches no series of the catalogue")


def detector_of(rule: Rule) -> str:
    """The detector named by the rule's first ``anomaly(<name>)``."""
    return next(n.detector for n in rule.nodes() if isinstance(n, ast.Anomaly))


def run_rule(
    series: list[NabSeries], rule: Rule | None = None,
    detectors: Mapping[str, DetectorFactory] | None = None, progress: Progress | None = None,
) -> list[NabResult]:
    """Feed every row through an `Engine` judging ``rule`` (the shipped one by default).

    Args:
        series: The files, fed together: round ``r`` holds row ``r`` of every file that long.
        rule: The rule to judge; it must use ``anomaly(<detector>)``.
        detectors: Detector factories for the engine (default: `rules.detectors.DETECTORS`).
        progress: Where to show progress.
    """
    rule = shipped_rule() if rule is None else rule
    device_type, metric = matched_series(rule)
    name = detector_of(rule)
    devices = [Device(f"nab-{i}", device_type, "nab", 0.0, 0.0) for i in range(len(series))]
    registry = Registry.build(load_catalogue(), devices)
    engine = Engine([rule], registry, detectors=detectors, timezone=NAB_TIMEZONE)
    slot_of = np.array([registry.slot(d.id, metric) for d in devices], dtype=np.int64)
    index_of = {d.id: i for i, d in enumerate(devices)}
    lengths = np.array([len(s.values) for s in series])
    n_rounds = int(lengths.max(initial=0))
    ts = np.zeros((len(series), n_rounds), dtype=np.int64)
    vals = np.zeros((len(series), n_rounds))
    for i, s in enumerate(series):
        ts[i, : len(s.values)], vals[i, : len(s.values)] = strictly_increasing(s.ts_ms), s.values
    scores = np.zeros((len(series), n_rounds))
    alerts = np.zeros((len(series), n_rounds), dtype=np.int8)
    task = progress.add_task("scoring", total=n_rounds) if progress else None
    for r in range(n_rounds):
        idx = np.flatnonzero(lengths > r).astype(np.int64)
        slots = slot_of[idx]
        batch = ReadingBatch.from_columns(slots, ts[idx, r], vals[idx, r])
        for d in engine.evaluate(batch, int(ts[idx, r].max())):
            if d.state is DetectionState.FIRING:
                alerts[index_of[d.subject], r] = 1
        scores[idx, r] = engine.ctx.scores[name][engine.ctx.detector_rows[name][slots]]
        if progress is not None and task is not None and r % 500 == 0:
            progress.update(task, completed=r)
    if engine.stats.late or engine.stats.duplicate:
        raise RuntimeError(f"engine dropped readings: {engine.stats}")
    return [NabResult(np.clip(scores[i, :n], 0.0, 1.0), alerts[i, :n])
            for i, n in enumerate(lengths)]


def write_results(out_dir: Path, series: NabSeries, result: NabResult) -> None:
    """Write one results CSV (``timestamp,value,anomaly_score,alert``) under ``out_dir``."""
    path = out_dir / series.name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score", "alert"])
        for stamp, value, score, alert in zip(series.stamps, series.values, result.scores,
                                              result.alerts, strict=True):
            w.writerow([stamp, repr(float(value)), repr(float(score)), int(alert)])


def nab(
    data: Annotated[Path, typer.Option(help="NAB data folder (<category>/<file>.csv).")],
    out: Annotated[Path, typer.Option(help="Results folder to write.")],
) -> None:
    """Run the shipped `anomaly` rule over a NAB data folder; write NAB results CSVs."""
    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory")
    series = read_series(data)
    with Progress() as progress:
        results = run_rule(series, progress=progress)
    for s, result in zip(series, results, strict=True):
        write_results(out, s, result)
    typer.echo(f"wrote {len(series)} results files to {out}")
