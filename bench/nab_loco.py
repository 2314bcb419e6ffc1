"""NAB leave-one-category-out: the shipped ``anomaly`` rule's alert-mode score on unseen files.

Every candidate configuration of the ``combined`` detector in ``CANDIDATES`` runs the shipped
rule over all data files (through `urbanwatch.cli.nab.run_rule`, the same path as
``urbanwatch nab``) and its ``alert`` column is scored per file by NAB's scorer in alert mode.
Then, for each category, a candidate is chosen by its alert-mode score on the *other*
categories, and the left-out category's files are reported with it: the shipped settings unless
the best there beats them by more than one standard error (`choose`); the plain best is reported
too (``best_on_the_others``). The figure is the score of
those reported files together, computed by the scorer itself on a results folder assembled
from the choices (one per profile: each profile chooses by its own score). Labels are used only
to choose among candidates on other categories and to score. The spread is a bootstrap over
files (resampled with replacement).

Each candidate's results are cached under ``OUT/candidates/<name>`` with a fingerprint of the
detector and engine code, so a rerun only scores. One process.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import rules
import urbanwatch.cli.nab as nab_cli
from rules.detectors import AnomalyLikelihood
from urbanwatch.cli.nab import NabResult, NabSeries, read_series, run_rule, write_results

PROFILES = {"standard": "standard", "low_fp": "reward_low_FP_rate",
            "low_fn": "reward_low_FN_rate"}
FN_WEIGHT = {"standard": 1.0, "reward_low_FP_rate": 1.0, "reward_low_FN_rate": 2.0}

# name -> AnomalyLikelihood keyword arguments; the shipped defaults are one of them. The quiet
# time after an alert (`refractory_s`) trades a second alert on one event (a false one once
# NAB's window has passed) against an event missed because an earlier alert still damps it.
CANDIDATES: dict[str, dict[str, Any]] = {
    f"d{decades}-s{min_std}" + ("" if refractory_h == 12 else f"-r{refractory_h}"): {
        "decades": decades, "min_std": min_std, "refractory_s": refractory_h * 3600.0}
    for refractory_h in (12, 6, 24) for decades in (2.5, 3.0, 3.5)
    for min_std in (0.015, 0.02, 0.03)
} | {  # a wider seen range before a value is novel (novel values score 1.0 outright)
    f"d{decades}-s{min_std}-t{round(tolerance * 100)}": {
        "decades": decades, "min_std": min_std, "range_tolerance": tolerance}
    for tolerance in (0.05, 0.1) for decades in (2.5, 3.0) for min_std in (0.02, 0.03)
} | {  # base detectors judged in context: how usual the context must find a reading
    f"d3.0-s{min_std}-e{explained_below}": {
        "min_std": min_std, "explained_below": explained_below}
    for explained_below in (0.4, 0.6) for min_std in (0.02, 0.03)
} | {"d3.0-s0.02-nocontext": {"context": ()}}  # every base detector judged alone, as before


def shipped_candidate() -> str | None:
    """The candidate that is ``AnomalyLikelihood()``'s defaults, if one is."""
    defaults = AnomalyLikelihood()
    return next((name for name, params in CANDIDATES.items()
                 if all(getattr(defaults, k) == v for k, v in params.items())), None)


@dataclass(frozen=True)
class Paths:
    """The scorer and the NAB data it reads."""

    scorer: Path
    data: Path
    labels: Path


def fingerprint() -> str:
    """A hash of the code a candidate's results depend on (detectors, engine, pack, driver).

    Python files are hashed as their syntax trees without docstrings (comments are not in the
    tree), so that editing prose does not throw the cache away.
    """
    root = Path(rules.__file__).parent
    files = sorted([*root.glob("detectors/*.py"), *root.glob("engine/*.py"),
                    root / "packs" / "default.yaml", Path(nab_cli.__file__)])
    digest = hashlib.sha256()
    for f in files:
        digest.update(code_key(f))
    return digest.hexdigest()[:16]


def code_key(path: Path) -> bytes:
    """What of a file the cache depends on: its syntax tree without docstrings, for Python."""
    if path.suffix != ".py":
        return path.read_bytes()
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        body: list[ast.stmt] = getattr(node, "body", None) or []
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree).encode()


def run_candidate(series: list[NabSeries], params: dict[str, Any], out: Path) -> None:
    """The shipped rule with ``combined`` built from ``params``; results written to ``out``."""
    def factory(timezone: str = "UTC") -> AnomalyLikelihood:
        return AnomalyLikelihood(**params, timezone=timezone)

    results = run_rule(series, detectors={"combined": factory})
    write_all(series, results, out)


def write_all(series: list[NabSeries], results: Iterable[NabResult], out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    for s, r in zip(series, results, strict=True):
        write_results(out, s, r)


def score_files(paths: Paths, results: Path, mode: str, profile: str = "all") -> dict[str, Any]:
    """The scorer's JSON summary (with per-file raw scores) of a results folder."""
    out = results.parent / f"{results.name}.{mode}.json"  # names hold dots: not with_suffix
    cmd = [sys.executable, str(paths.scorer), "--data", str(paths.data), "--labels",
           str(paths.labels), "--results", str(results), "--mode", mode, "--profile", profile,
           "--per-file", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


def per_file_raw(summary: dict[str, Any], profile: str) -> dict[str, float]:
    return {name: p[profile]["raw_score"] for name, p in summary["per_file"].items()}


def category(name: str) -> str:
    return name.split("/", 1)[0]


def choose(raw: dict[str, dict[str, float]], left_out: str, default: str | None = None) -> str:
    """The candidate with the best summed raw score on the files outside ``left_out`` (ties go
    to the first in ``CANDIDATES`` order); with a ``default``, that one unless the best beats
    it there by more than one standard error of the difference (the files resampled), the
    one-standard-error rule: a flat top of the landscape is no reason to move."""
    others = [f for f in next(iter(raw.values())) if category(f) != left_out]

    def total(cand: str) -> float:
        return sum(raw[cand][f] for f in others)
    best = max(raw, key=total)
    if default is None or best == default:
        return best
    gain = np.array([raw[best][f] - raw[default][f] for f in others])
    return best if gain.sum() > np.sqrt(len(gain)) * gain.std() else default


def normalised(raw: np.ndarray, null: np.ndarray, windows: np.ndarray) -> float:
    """NAB's normalisation of summed raw scores: 100 (perfect) .. 0 (never fires)."""
    return float(100.0 * (raw.sum() - null.sum()) / (windows.sum() - null.sum()))


def bootstrap(raw: np.ndarray, null: np.ndarray, windows: np.ndarray, n: int = 2000,
              seed: int = 0) -> dict[str, float]:
    """Spread of the normalised score over files resampled with replacement."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(raw), size=(n, len(raw)))
    r, nl, w = raw[picks].sum(1), null[picks].sum(1), windows[picks].sum(1)
    ok = w != nl
    scores = 100.0 * (r[ok] - nl[ok]) / (w[ok] - nl[ok])
    return {"std": round(float(scores.std()), 1),
            "p05": round(float(np.percentile(scores, 5)), 1),
            "p95": round(float(np.percentile(scores, 95)), 1)}


@dataclass(frozen=True)
class Figures:
    """One profile's figures of a leave-one-category-out choice."""

    paths: Paths
    files: list[str]
    profile: str
    null: np.ndarray  # per file: the raw score of never alerting
    windows: np.ndarray  # per file: the raw score of a perfect detector

    def of(self, folder: Path, chosen: dict[str, str]) -> dict[str, Any]:
        """Each file's results taken from its category's chosen candidate into ``folder``
        (beside ``candidates``), scored."""
        if folder.exists():
            shutil.rmtree(folder)
        for f in self.files:
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder.parent / "candidates" / chosen[category(f)] / f, folder / f)
        p = self.profile
        summary = score_files(self.paths, folder, "alert", p)
        raw = np.array([summary["per_file"][f][p]["raw_score"] for f in self.files])
        return {
            "score": round(summary["profiles"][p]["score"], 1),
            "check": round(normalised(raw, self.null, self.windows), 1),
            "windows_detected": summary["profiles"][p]["windows_detected"],
            "fp_rows": summary["profiles"][p]["fp_rows"],
            "bootstrap": bootstrap(raw, self.null, self.windows),
            "chosen": chosen,
        }


def run(paths: Paths, out: Path, report: Callable[[str], None] = lambda _: None,
        shipped: str | None = None) -> dict[str, Any]:
    """Run (or reuse) every candidate, choose leave-one-category-out, score the choices.

    Args:
        paths: The scorer, data folder and labels.
        out: Working folder (candidate results are cached there).
        report: Called with a line of progress.
        shipped: The shipped candidate: kept unless another is clearly better on the other
            categories (`choose`), and its swept-threshold score is reported as the ceiling.

    Returns:
        The figures as a JSON-able dict.
    """
    series = read_series(paths.data)
    stamp = fingerprint()
    raw: dict[str, dict[str, dict[str, float]]] = {p: {} for p in PROFILES.values()}
    for name, params in CANDIDATES.items():
        folder = out / "candidates" / name
        done = folder / ".done"
        if not (done.is_file() and done.read_text() == stamp):
            report(f"running candidate {name} {params}")
            run_candidate(series, params, folder)
            done.write_text(stamp)
        summary = score_files(paths, folder, "alert")
        for p in PROFILES.values():
            raw[p][name] = per_file_raw(summary, p)
    null_dir = out / "null"
    write_all(series, (NabResult(np.zeros(len(s.values)), np.zeros(len(s.values), np.int8))
                       for s in series), null_dir)
    null_summary = score_files(paths, null_dir, "alert")
    files = sorted(null_summary["per_file"])
    windows = np.array([null_summary["per_file"][f]["standard"]["windows"] for f in files],
                       dtype=float)
    result: dict[str, Any] = {"fingerprint": stamp, "candidates": CANDIDATES, "profiles": {}}
    categories = sorted({category(f) for f in files})
    for key, p in PROFILES.items():
        null = np.array([per_file_raw(null_summary, p)[f] for f in files])
        figures = Figures(paths, files, p, null, windows)
        result["profiles"][key] = figures.of(
            out / f"loco-{key}", {c: choose(raw[p], c, shipped) for c in categories}) | {
            "best_on_the_others": figures.of(
                out / f"loco-{key}-best", {c: choose(raw[p], c) for c in categories}),
            "all_files_by_candidate": {
                c: round(normalised(np.array([raw[p][c][f] for f in files]), null, windows), 1)
                for c in CANDIDATES},
        }
    if shipped is not None:
        swept = score_files(paths, out / "candidates" / shipped, "score")
        result["ceiling_swept"] = {
            k: round(swept["profiles"][p]["score"], 1) for k, p in PROFILES.items()}
    return result
