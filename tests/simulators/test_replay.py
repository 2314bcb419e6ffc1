"""Reading a recorded series for replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulators.replay import read_series


def test_a_nab_style_file_is_read_and_moved_keeping_its_spacing(tmp_path: Path) -> None:
    path = tmp_path / "speed.csv"
    path.write_text("timestamp,value\n2015-09-01 13:45:00,3.06\n2015-09-01 13:50:00,6.44\n"
                    "2015-09-01 14:05:00,5.0\n")
    series = read_series(path)
    assert series.ts_ms[0] == 1441115100000 and list(series.values) == [3.06, 6.44, 5.0]
    moved = series.moved_to(1_800_000_000_000)
    assert list(np.diff(moved.ts_ms)) == [300_000, 900_000] and moved.ts_ms[0] == 1_800_000_000_000


@pytest.mark.parametrize(("text", "reason"), [
    ("", "header"),
    ("timestamp,value\n2015-09-01 13:45:00,abc\n", "line 2"),
    ("timestamp,value\nyesterday,1\n", "line 2"),
    ("timestamp,value\n2015-09-01 13:45:00,1\n2015-09-01 13:40:00,2\n", "increasing"),
], ids=["empty", "not-a-number", "not-a-time", "back-in-time"])
def test_a_bad_file_is_refused_saying_where(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=reason):
        read_series(path)
