"""Structural sensors carry their asset's allowables, and adding them left every city as it was."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from devices.catalogue import load_catalogue
from devices.files import read_devices
from devices.geo import load_geography
from simulators.city import City, build_city, write_city
from simulators.signals import values

ALLOWABLES = ("tilt_allow_deg", "strain_allow_ue")
ADDED_LATER = (*ALLOWABLES, "noise_zone")
# The city's columns before the allowables were added, and their fingerprints as built then
# (less the noise monitors' levels and the PM2.5 base, which the quiet ordinary city reshaped).
OLD_COLUMNS = (
    "level_base_m", "warning_level_m", "guaranteed_level_m", "historical_max_level_m",
    "free_flow_kmh", "capacity_vph", "pm10_ratio", "strain_base_ue",
    "tilt_base_deg", "temp_offset_c", "phase",
)
OLD_FINGERPRINTS = {
    (200, 7): "4aff7dc997a3d51930a101e9cd27dbc7a1f97025e532c5cf3d4aeb1deb3e4952",
    (2000, 42): "2e5667634b3b898b451ce29c531dab12c8e118d8c4474c986c2a89aef61e63e8",
}
MONDAY_MS = 1731859200000
DAY_MS = 86_400_000


def _structural(city: City) -> np.ndarray:
    return np.flatnonzero(np.array([d.type for d in city.devices]) == "structural")


def _old_fingerprint(city: City) -> str:
    """Every device (without the allowables) and every column the city had before them."""
    h = hashlib.sha256()
    for d in city.devices:
        attrs = sorted((k, v) for k, v in d.attributes.items() if k not in ADDED_LATER)
        h.update(repr((d.id, d.type, d.district, d.lat, d.lon, d.grid, d.department,
                       d.status.value, d.installed, attrs)).encode())
    for name in sorted(OLD_COLUMNS):
        h.update(name.encode())
        h.update(np.ascontiguousarray(city.attrs[name]).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize(("n", "seed"), list(OLD_FINGERPRINTS), ids=lambda v: str(v))
def test_the_allowables_leave_every_existing_column_as_it_was(n: int, seed: int) -> None:
    city = build_city(n, seed)
    assert _old_fingerprint(city) == OLD_FINGERPRINTS[n, seed]


def test_a_structural_sensor_is_placed_and_biased_as_before() -> None:
    city = build_city(200, seed=7)
    i = _structural(city)[0]
    d = city.devices[i]
    assert (d.id, d.lat, d.lon) == ("st-0001", 39.874196, 116.455847)
    assert city.attrs["strain_base_ue"][i] == pytest.approx(33.469472467448895, abs=1e-12)
    assert city.attrs["tilt_base_deg"][i] == pytest.approx(-0.023267737933069355, abs=1e-15)


def test_structural_devices_carry_plausible_allowables() -> None:
    city = build_city(600, seed=3)
    st = _structural(city)
    assert len(st) >= 30
    for i in st:
        assert city.devices[i].attributes == {
            name: city.attrs[name][i] for name in ALLOWABLES}
    tilt, strain = city.attrs["tilt_allow_deg"], city.attrs["strain_allow_ue"]
    assert tilt[st] == pytest.approx(math.degrees(0.004))  # a building up to 24 m
    # Q235 or Q345/Q355 steel: design strength over E, about 1040 or 1480 microstrain
    assert set(np.round(strain[st])) == {1044.0, 1481.0}
    others = np.setdiff1d(np.arange(len(city.devices)), st)
    assert np.all(np.isnan(tilt[others])) and np.all(np.isnan(strain[others]))
    assert all(not set(ALLOWABLES) & set(city.devices[i].attributes) for i in others)


def test_a_week_of_simulated_readings_stays_below_60_percent_of_the_allowables() -> None:
    city = build_city(2000, seed=1)
    st = _structural(city)
    ts = MONDAY_MS + np.arange(0, 7 * DAY_MS, 5 * 60_000)
    dev = np.repeat(st, len(ts))
    out = values(city, dev, np.tile(ts, len(st)))
    tilt_share = np.abs(out["tilt_deg"]) / city.attrs["tilt_allow_deg"][dev]
    strain_share = np.abs(out["strain_ue"]) / city.attrs["strain_allow_ue"][dev]
    assert tilt_share.max() < 0.6 and strain_share.max() < 0.6
    assert tilt_share.max() > 0.3  # the as-built tilt is a real share, not zero


def test_written_structural_devices_keep_their_allowables(tmp_path: Path) -> None:
    city = build_city(300, seed=8)
    areas_path, devices_path = write_city(city, tmp_path)
    read = read_devices(devices_path, load_catalogue(), load_geography(areas_path))
    structural = [d for d in read if d.type == "structural"]
    assert structural
    index = {d.id: i for i, d in enumerate(city.devices)}
    for d in structural:
        assert d.attributes == {name: city.attrs[name][index[d.id]] for name in ALLOWABLES}
