"""hour() in the city's IANA zone: the vectorized form agrees with the plain one, across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from rules.engine.local_time import local_hour, local_hour_of

ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
         "Australia/Lord_Howe", "UTC"]


@pytest.mark.parametrize("zone", ZONES, ids=ZONES)
def test_vectorized_hour_equals_the_plain_one_through_a_year(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    t = start + np.arange(0, 366 * 24 * 4) * 900_000 + 7  # every quarter hour, DST included
    expected = [local_hour_of(int(x), tz) for x in t]
    assert local_hour(t, tz).tolist() == expected


def test_a_dst_change_moves_the_local_hour() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    noon_utc = [int(datetime(2026, m, 15, 12, tzinfo=UTC).timestamp() * 1000) for m in (1, 7)]
    assert local_hour(np.array(noon_utc), berlin).tolist() == [13.0, 14.0]
