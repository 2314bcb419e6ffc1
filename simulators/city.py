"""A seeded synthetic city: districts, ~1 km grid cells and the devices placed in them.

The same (n_devices, seed) always gives the same city, so a simulator and the
platform's registry built from its GeoJSON agree without sharing state. The
districts tile a rectangle around a central-Beijing-like centre; each district
is a block of square cells, and every device lies strictly inside one cell.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

import numpy as np

from devices.catalogue import Catalogue, load_catalogue
from devices.files import write_devices_geojson
from devices.geo import Area, AreaKind, Geography
from devices.registry import Device, DeviceStatus
from simulators.holidays import PUBLIC_HOLIDAYS, day_numbers
from simulators.noise_sites import noise_site_columns

CENTRE_LAT, CENTRE_LON = 39.9042, 116.4074
UTC_OFFSET_S = 8 * 3600
CELL_KM = 1.0
DISTRICT_NAMES = ("haidian", "xicheng", "dongcheng", "fengtai", "shijingshan", "chaoyang")
DISTRICT_ROWS, DISTRICT_COLS = 2, 3  # districts are laid out in reading order of DISTRICT_NAMES
CELLS_PER_DISTRICT_SIDE = 4
_KM_PER_DEG_LAT = 111.32
# Per device type: the simulator's columns exported as the device attributes the rule pack
# reads (gauge levels in metres, a road's free-flow speed, a structure's allowables).
EXPORTED_ATTRIBUTES = {
    "water_level": {
        "warning_level_m": "warning_level",
        "guaranteed_level_m": "guaranteed_level",
        "historical_max_level_m": "historical_max_level",
    },
    "traffic_flow": {"free_flow_kmh": "free_flow_kmh"},
    "structural": {"tilt_allow_deg": "tilt_allow_deg", "strain_allow_ue": "strain_allow_ue"},
    "noise": {"noise_zone": "noise_zone"},
}
# Structural allowables (from memory, verify before relying on them). Tilt: GB 50007-2011
# Table 5.3.4 allows an overall tilt of 0.004 for buildings up to 24 m (0.003 for 24-60 m); the
# simulated as-built tilt (up to +-0.1 deg) stays below 50 % of it. Strain: the design strength
# of the member's steel over E = 206 GPa, GB 50017-2017: Q235 215 MPa or Q345/Q355 305 MPa
# (plates up to 16 mm), i.e. about 1040 or 1480 ue against simulated readings of at most ~210 ue.
TILT_ALLOW_DEG = math.degrees(0.004)
STEEL_E_MPA = 206_000.0
STEEL_DESIGN_STRENGTH_MPA = (215.0, 305.0)


@dataclass(frozen=True)
class TypePlan:
    prefix: str
    weight: float
    department: str


# Share of the fleet per type (normalised) and the department that owns it.
TYPE_PLAN: dict[str, TypePlan] = {
    "air_quality": TypePlan("aq", 0.10, "environment_bureau"),
    "noise": TypePlan("ns", 0.08, "environment_bureau"),
    "water_level": TypePlan("wl", 0.08, "water_authority"),
    "rain_gauge": TypePlan("rg", 0.06, "water_authority"),
    "traffic_flow": TypePlan("tf", 0.20, "traffic_police"),
    "gas": TypePlan("gs", 0.12, "gas_company"),
    "smoke": TypePlan("sm", 0.12, "fire_rescue"),
    "manhole": TypePlan("mh", 0.12, "water_authority"),
    "structural": TypePlan("st", 0.06, "city_management"),
    "weather": TypePlan("ws", 0.06, "weather_service"),
}


@dataclass(frozen=True)
class BoxArea:
    """A district or a grid cell: an axis-aligned box in WGS84 degrees."""

    id: str
    name: str
    kind: AreaKind
    district: str
    south: float
    west: float
    north: float
    east: float

    def ring(self) -> list[list[float]]:
        """The closed exterior ring as GeoJSON [lon, lat] positions, counter-clockwise."""
        s, w, n, e = self.south, self.west, self.north, self.east
        return [[w, s], [e, s], [e, n], [w, n], [w, s]]

    def contains(self, lat: float, lon: float) -> bool:
        return self.south < lat < self.north and self.west < lon < self.east

    def to_area(self) -> Area:
        ring = tuple((lon, lat) for lon, lat in self.ring())
        return Area(self.id, self.name, self.kind, self.district, ((ring,),))


@dataclass(frozen=True, eq=False)
class City:
    """Areas, devices and the per-device attributes the signal models need.

    `attrs` columns are parallel to `devices` (NaN where a column does not apply
    to the device's type), e.g. `attrs["warning_level_m"]` for water gauges. Water
    gauges, road sensors, structural sensors and noise monitors carry what the rules need as
    attributes (`EXPORTED_ATTRIBUTES`).
    """

    seed: int
    catalogue: Catalogue
    districts: tuple[BoxArea, ...]
    cells: tuple[BoxArea, ...]
    devices: tuple[Device, ...]
    type_index: np.ndarray  # int64 per device: position of its type in `type_names`
    district_index: np.ndarray  # int64 per device: position of its district in `districts`
    attrs: dict[str, np.ndarray]
    utc_offset_s: int = UTC_OFFSET_S
    holidays: frozenset[date] = PUBLIC_HOLIDAYS  # local dates with the weekend's pattern

    @cached_property
    def holiday_days(self) -> np.ndarray:
        return day_numbers(self.holidays)

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(self.catalogue)

    def geography(self) -> Geography:
        """The districts and cells as the registry's `Geography` (point location, neighbours)."""
        return Geography.build(a.to_area() for a in (*self.districts, *self.cells))


def build_city(n_devices: int, seed: int, catalogue: Catalogue | None = None) -> City:
    """Build the city with `n_devices` devices of every catalogue type, deterministically."""
    if n_devices < 0:
        raise ValueError(f"n_devices must be >= 0, got {n_devices}")
    catalogue = catalogue if catalogue is not None else load_catalogue()
    unknown = set(catalogue) - set(TYPE_PLAN)
    if unknown:
        raise ValueError(f"no simulation plan for device types {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    districts, cells = _areas()
    types = _type_sequence(catalogue, n_devices)
    cell_idx = rng.integers(0, len(cells), size=n_devices)
    # A 5 % margin keeps every point strictly inside its cell after float rounding.
    fx, fy = rng.uniform(0.05, 0.95, size=(2, n_devices))
    install_days = rng.integers(0, 7 * 365, size=n_devices)
    counters: dict[str, int] = {}
    devices = []
    for i, type_name in enumerate(types):
        plan = TYPE_PLAN[type_name]
        counters[type_name] = counters.get(type_name, 0) + 1
        cell = cells[cell_idx[i]]
        devices.append(
            Device(
                id=f"{plan.prefix}-{counters[type_name]:04d}",
                type=type_name,
                district=cell.district,
                lat=round(float(cell.south + fy[i] * (cell.north - cell.south)), 6),
                lon=round(float(cell.west + fx[i] * (cell.east - cell.west)), 6),
                grid=cell.id,
                department=plan.department,
                status=DeviceStatus.ACTIVE,
                installed=date(2018, 1, 1) + timedelta(days=int(install_days[i])),
            )
        )
    names = list(catalogue)
    type_index = np.array([names.index(t) for t in types], dtype=np.int64)
    district_ids = [d.id for d in districts]
    district_index = np.array([district_ids.index(d.district) for d in devices], dtype=np.int64)
    attrs = _attributes(rng, names, type_index)
    devices = _with_attributes(devices, attrs)
    return City(
        seed, catalogue, districts, cells, tuple(devices), type_index, district_index, attrs
    )


def _areas() -> tuple[tuple[BoxArea, ...], tuple[BoxArea, ...]]:
    """District blocks in reading order of DISTRICT_NAMES; cells `g-<row>-<col>`, row 0 north."""
    side = CELLS_PER_DISTRICT_SIDE
    rows, cols = DISTRICT_ROWS * side, DISTRICT_COLS * side
    dlat = CELL_KM / _KM_PER_DEG_LAT
    dlon = CELL_KM / (_KM_PER_DEG_LAT * math.cos(math.radians(CENTRE_LAT)))
    north0, west0 = CENTRE_LAT + rows * dlat / 2, CENTRE_LON - cols * dlon / 2

    def box(area_id: str, kind: AreaKind, district: str, row: int, col: int, size: int) -> BoxArea:
        north, west = north0 - row * dlat, west0 + col * dlon
        return BoxArea(
            area_id, area_id, kind, district, north - size * dlat, west, north, west + size * dlon
        )

    cells = tuple(
        box(f"g-{r}-{c}", "grid", DISTRICT_NAMES[(r // side) * DISTRICT_COLS + c // side], r, c, 1)
        for r in range(rows)
        for c in range(cols)
    )
    districts = tuple(
        box(name, "district", name, (k // DISTRICT_COLS) * side, (k % DISTRICT_COLS) * side, side)
        for k, name in enumerate(DISTRICT_NAMES)
    )
    return districts, cells


def _type_sequence(catalogue: Catalogue, n: int) -> list[str]:
    """Types in catalogue order, sized by weight (largest remainder), one of each if n allows."""
    names = list(catalogue)
    weights = np.array([TYPE_PLAN[t].weight for t in names])
    floor_each = 1 if n >= len(names) else 0
    spare = n - floor_each * len(names)
    exact = weights / weights.sum() * spare
    counts = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - counts), kind="stable")[: spare - counts.sum()]:
        counts[k] += 1
    return [t for t, c in zip(names, counts + floor_each, strict=True) for _ in range(c)]


def _attributes(rng: np.random.Generator, names: list[str], type_index: np.ndarray) -> dict:
    n = len(type_index)

    def only(type_name: str, values: np.ndarray) -> np.ndarray:
        return np.where(type_index == names.index(type_name), values, np.nan)

    # A column added later reuses a draw its type leaves free (u[2] on structural rows):
    # drawing more would shift `road_class` and change every existing city.
    u = rng.uniform(size=(8, n))
    river_base = 0.5 + 2.5 * u[0]
    sewer_base = 0.2 + 0.6 * u[0]
    river_warning = river_base + 1.5 + 1.5 * u[1]
    river_guaranteed = river_warning + 0.5 + 1.0 * u[7]
    road_class = rng.integers(0, 3, size=n)  # expressway / arterial / collector
    design_strength = np.where(u[2] < 0.5, *STEEL_DESIGN_STRENGTH_MPA)  # a structure's steel
    noise = noise_site_columns(u[2], u[3])
    return {
        "level_base_m": np.fmax(only("water_level", river_base), only("manhole", sewer_base)),
        "warning_level_m": np.fmax(
            only("water_level", river_warning),
            only("manhole", sewer_base + 1.0 + 0.5 * u[1]),
        ),
        "guaranteed_level_m": only("water_level", river_guaranteed),
        "historical_max_level_m": only("water_level", river_guaranteed + 0.3 + 0.7 * u[1]),
        "free_flow_kmh": only("traffic_flow", np.array([80.0, 60.0, 40.0])[road_class] + 5 * u[2]),
        "capacity_vph": only("traffic_flow", np.array([6000.0, 3600.0, 1800.0])[road_class]),
        "pm25_base": only("air_quality", 15 + 20 * u[3]),
        "pm10_ratio": only("air_quality", 1.4 + 0.5 * u[4]),
        **{name: only("noise", column) for name, column in noise.items()},
        "strain_base_ue": only("structural", -150 + 300 * u[3]),
        "tilt_base_deg": only("structural", -0.1 + 0.2 * u[4]),
        "tilt_allow_deg": only("structural", np.full(n, TILT_ALLOW_DEG)),
        "strain_allow_ue": only("structural", design_strength / STEEL_E_MPA * 1e6),
        "temp_offset_c": 2 * u[5] - 1,
        "phase": 2 * np.pi * u[6],
    }


def _with_attributes(devices: list[Device], attrs: dict[str, np.ndarray]) -> list[Device]:
    out = []
    for i, device in enumerate(devices):
        exported = EXPORTED_ATTRIBUTES.get(device.type)
        if exported:
            values = {name: float(attrs[column][i]) for column, name in exported.items()}
            device = replace(device, attributes=values)
        out.append(device)
    return out


def write_city(city: City, out_dir: Path) -> tuple[Path, Path]:
    """Write `areas.geojson` and `devices.geojson` (with device attributes) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    areas_path, devices_path = out_dir / "areas.geojson", out_dir / "devices.geojson"
    areas_path.write_text(json.dumps(city.geography().to_geojson()))
    write_devices_geojson(city.devices, devices_path)
    return areas_path, devices_path

