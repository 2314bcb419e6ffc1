"""Noise monitors carry their GB 3096-2008 zone, and read within its limits at every hour."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from simulators.city import build_city
from simulators.noise_sites import NOISE_SITES
from simulators.signals import values

MONDAY_MS = 1731859200000  # 00:00 in the city's time zone
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
CITY = build_city(3000, seed=2)
MONITORS = np.flatnonzero(np.array([d.type for d in CITY.devices]) == "noise")
# GB 3096-2008 LAeq limits (day 06-22, night), dB(A), by the noise_zone attribute
LIMITS = {0: (50, 40), 1: (55, 45), 2: (60, 50), 3: (65, 55), 4: (70, 55), 4.5: (70, 60)}


def test_every_monitor_has_a_zone_from_its_site() -> None:
    zones = Counter(CITY.devices[i].attributes["noise_zone"] for i in MONITORS)
    assert set(zones) == {site.zone for site in NOISE_SITES}
    assert zones.most_common(1)[0][0] == 4  # most monitors stand along roads (zone 4a)
    others = np.setdiff1d(np.arange(len(CITY.devices)), MONITORS)
    assert np.all(np.isnan(CITY.attrs["noise_zone"][others]))


@pytest.mark.parametrize("weekend", [False, True], ids=["weekday", "weekend"])
def test_a_monitor_reads_5_db_under_its_zone_limit_on_average(weekend: bool) -> None:
    """Hourly means (a 10-min mean is close to them) against the limit in force that hour."""
    ts = MONDAY_MS + (5 if weekend else 0) * DAY_MS + np.arange(0, DAY_MS, 60_000)
    dev = np.repeat(MONITORS, len(ts))
    laeq = values(CITY, dev, np.tile(ts, len(MONITORS)))["laeq_db"].reshape(len(MONITORS), -1)
    hourly = laeq.reshape(len(MONITORS), 24, 60).mean(axis=2)
    zone = CITY.attrs["noise_zone"][MONITORS]
    day = np.array([LIMITS[z][0] for z in zone])[:, None]
    night = np.array([LIMITS[z][1] for z in zone])[:, None]
    hours = np.arange(24)
    limit = np.where((hours >= 6) & (hours < 22), day, night)
    assert np.all(hourly <= limit - 5)
    assert np.max(hourly - limit) > -10  # near the limit at its busiest, not far below it
