"""Where the synthetic city's noise monitors stand, and the GB 3096-2008 zone that makes them.

GB 3096-2008 limits LAeq by functional zone (day 06-22 / night, dB(A)): 0 50/40, 1 55/45,
2 60/50, 3 65/55, 4a 70/55 (along roads), 4b 70/60 (along railway trunk lines). Each monitor
gets a site, and from it the `noise_zone` attribute the rule pack reads and the levels its
signal model plays (`simulators.signals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoiseSite:
    """Where a noise monitor stands: its GB 3096-2008 functional zone and what it hears there.

    ``zone`` is the `noise_zone` attribute the rule pack reads: 0-3, 4 for zone 4a (along roads
    and surface rail transit) and 4.5 for zone 4b (along railway trunk lines). A site reads
    ``quiet_db`` (LAeq, dB(A)) when the roads are empty and ``rush_rise_db`` more at full road
    demand: at least 5 dB under its zone's day and night limits all day (demand peaks near 0.8,
    and reaches 0.3 before 06:00 and after 22:00), as a city that keeps to its plan does.
    """

    name: str
    zone: float
    share: float
    quiet_db: float
    rush_rise_db: float


NOISE_SITES = (
    NoiseSite("residential", 1, 0.25, 35.0, 16.0),  # limits 55 / 45 dB(A)
    NoiseSite("mixed", 2, 0.25, 40.0, 16.0),  # 60 / 50
    NoiseSite("industrial", 3, 0.10, 45.0, 16.0),  # 65 / 55
    NoiseSite("roadside", 4, 0.35, 42.0, 26.0),  # 4a: 70 / 55
    NoiseSite("railway", 4.5, 0.05, 47.0, 22.0),  # 4b: 70 / 60
)


def noise_site_columns(u_site: np.ndarray, u_level: np.ndarray) -> dict[str, np.ndarray]:
    """Per device, from two uniform draws: its zone and levels (a site 0-3 dB quieter than its
    type, so that monitors of one zone differ)."""
    shares = np.cumsum([site.share for site in NOISE_SITES])
    site = np.minimum(np.searchsorted(shares / shares[-1], u_site), len(NOISE_SITES) - 1)
    return {
        "noise_zone": np.array([s.zone for s in NOISE_SITES])[site],
        "quiet_db": np.array([s.quiet_db for s in NOISE_SITES])[site] - 3 * u_level,
        "rush_rise_db": np.array([s.rush_rise_db for s in NOISE_SITES])[site],
    }
