"""`api.clock`: the one reading of input timestamps and the one rendering of output ones."""

from __future__ import annotations

import numpy as np
import pytest

from api.clock import EPOCH_MS_MAX, iso_time, iso_times, parse_instant

T_MS = 1_795_420_800_000  # 2026-11-23T08:00:00Z


@pytest.mark.parametrize("given", [
    "2026-11-23T08:00:00Z", "2026-11-23T08:00:00.000+00:00", "2026-11-23T16:00:00+08:00",
    "2026-11-23T03:00:00-05:00", str(T_MS), T_MS,
], ids=["z", "utc-offset", "shanghai", "new-york", "epoch-ms-text", "epoch-ms"])  # fmt: skip
def test_one_instant_in_every_accepted_form(given: object) -> None:
    assert parse_instant(given) == T_MS


@pytest.mark.parametrize(("given", "reason"), [
    ("2026-11-23T08:00:00", "time zone"), ("2026-11-23", "time zone"),
    ("soon", "epoch ms"), ("-5", "epoch ms"), ("1.7e12", "epoch ms"), ("", "epoch ms"),
    (True, "epoch ms"), (1.5, "epoch ms"), (-1, "between"), (EPOCH_MS_MAX + 1, "between"),
    ("9" * 30, "between"), ("9999-12-31T23:59:59-12:00", "between"),
], ids=["naive", "date-only", "word", "negative-text", "float-text", "empty", "bool", "float",
        "negative", "past-9999", "huge-digits", "past-9999-by-offset"])  # fmt: skip
def test_what_is_refused_says_why(given: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_instant(given)


def test_out_is_utc_with_z_and_milliseconds() -> None:
    assert iso_time(T_MS) == "2026-11-23T08:00:00.000Z"
    assert iso_time(T_MS + 7) == "2026-11-23T08:00:00.007Z"
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(EPOCH_MS_MAX) == "9999-12-31T23:59:59.999Z"
    assert parse_instant(iso_time(T_MS + 7)) == T_MS + 7  # what goes out comes back in


def test_a_whole_series_renders_as_each_instant_does() -> None:
    ms = np.array([0, T_MS, T_MS + 7, -5, EPOCH_MS_MAX, -62_135_596_800_000], dtype=np.int64)
    assert iso_times(ms) == [iso_time(int(m)) for m in ms]
