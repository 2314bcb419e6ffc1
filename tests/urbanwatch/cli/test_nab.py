"""`urbanwatch nab`: the engine path scores every row exactly as the detector driven directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.detectors import DETECTORS
from urbanwatch.cli.nab import read_series, run_detector, run_engine, strictly_increasing


def write_csv(path: Path, stamps: list[str], values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{s},{v!r}" for s, v in zip(stamps, values.tolist(), strict=True)]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")


def test_strictly_increasing_moves_duplicates_and_backward_stamps_just_after() -> None:
    got = strictly_increasing(np.array([10, 20, 20, 20, 15, 19, 30, 30], dtype=np.int64))
    assert got.tolist() == [10, 20, 21, 22, 23, 24, 30, 31]


@pytest.mark.parametrize("name", ["combined", "step"])
def test_engine_path_equals_direct_path(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(1)
    minutes = np.arange(400) * 5
    stamps = [str(np.datetime64("2014-03-09T00:00") + np.timedelta64(int(m), "m")).replace(
        "T", " ") + ":00" for m in minutes]
    stamps[250] = stamps[249]  # a duplicate stamp, as in the AWS files
    spiky = 10 + np.sin(minutes / 60) + rng.normal(0, 0.1, 400)
    spiky[300] += 20.0
    write_csv(tmp_path / "a" / "spiky.csv", stamps, spiky)
    write_csv(tmp_path / "b" / "short.csv", stamps[:260], rng.normal(0, 1, 260))
    series = read_series(tmp_path)
    via_engine = run_engine(name, series)
    direct = run_detector(DETECTORS[name](), series)
    for e, d, s in zip(via_engine, direct, series, strict=True):
        assert len(e) == len(s.values)
        np.testing.assert_array_equal(e, d)
    assert via_engine[0][300] > np.max(via_engine[0][:300])
