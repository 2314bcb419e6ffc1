"""The synthetic city: deterministic, consistent areas, every device inside its cell."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from devices.catalogue import load_catalogue
from devices.files import read_devices
from devices.geo import load_geography
from simulators.city import TYPE_PLAN, build_city, write_city

CATALOGUE = load_catalogue()


def test_same_inputs_build_the_same_city() -> None:
    a, b = build_city(120, seed=5), build_city(120, seed=5)
    assert a.devices == b.devices
    assert a.cells == b.cells
    for name, column in a.attrs.items():
        np.testing.assert_array_equal(column, b.attrs[name])


def test_another_seed_places_devices_elsewhere() -> None:
    a, b = build_city(120, seed=5), build_city(120, seed=6)
    assert [d.id for d in a.devices] == [d.id for d in b.devices]
    assert [(d.lat, d.lon) for d in a.devices] != [(d.lat, d.lon) for d in b.devices]


@pytest.mark.parametrize("n", [10, 50, 333], ids=lambda n: f"n{n}")
def test_every_type_is_present_with_unique_prefixed_ids(n: int) -> None:
    city = build_city(n, seed=1)
    assert len(city.devices) == n
    assert set(Counter(d.type for d in city.devices)) == set(CATALOGUE)
    assert len({d.id for d in city.devices}) == n
    for d in city.devices:
        prefix, number = d.id.split("-")
        assert prefix == TYPE_PLAN[d.type].prefix and len(number) == 4
        assert d.department == TYPE_PLAN[d.type].department
        assert d.status == "active" and d.installed is not None


def test_traffic_is_the_largest_share() -> None:
    counts = Counter(d.type for d in build_city(500, seed=1).devices)
    assert counts.most_common(1)[0][0] == "traffic_flow"


def test_every_device_lies_inside_its_cell_and_district() -> None:
    city = build_city(300, seed=9)
    cells = {c.id: c for c in city.cells}
    districts = {d.id: d for d in city.districts}
    for d in city.devices:
        cell = cells[d.grid]
        assert cell.contains(d.lat, d.lon), d
        assert cell.district == d.district
        assert districts[d.district].contains(d.lat, d.lon)
        assert city.districts[city.district_index[city.devices.index(d)]].id == d.district


def test_cells_tile_their_districts() -> None:
    city = build_city(0, seed=1)
    assert 6 <= len(city.districts) <= 8
    ids = [c.id for c in city.cells]
    assert len(ids) == len(set(ids)) and all(i.startswith("g-") for i in ids)
    for district in city.districts:
        own = [c for c in city.cells if c.district == district.id]
        area = sum((c.north - c.south) * (c.east - c.west) for c in own)
        expected = (district.north - district.south) * (district.east - district.west)
        assert area == pytest.approx(expected, rel=1e-9)
        for c in own:
            assert district.contains((c.north + c.south) / 2, (c.east + c.west) / 2)
    side_km = (city.cells[0].north - city.cells[0].south) * 111.32
    assert side_km == pytest.approx(1.0, rel=0.01)
    geography = city.geography()
    assert geography.neighbours("g-1-1") == {
        f"g-{r}-{c}" for r in range(3) for c in range(3) if (r, c) != (1, 1)
    }
    assert geography.neighbours("g-0-0") == {"g-0-1", "g-1-0", "g-1-1"}


def test_signal_attributes_are_set_for_their_types_only() -> None:
    city = build_city(200, seed=3)
    types = np.array([d.type for d in city.devices])
    gauges = types == "water_level"
    assert np.all(city.attrs["warning_level_m"][gauges] > city.attrs["level_base_m"][gauges] + 1)
    assert np.all(np.isnan(city.attrs["free_flow_kmh"][types != "traffic_flow"]))
    assert np.all(city.attrs["free_flow_kmh"][types == "traffic_flow"] >= 40)


def test_write_city_writes_both_geojson_files(tmp_path: Path) -> None:
    city = build_city(60, seed=2)
    areas_path, devices_path = write_city(city, tmp_path / "out")
    areas = json.loads(areas_path.read_text())
    kinds = Counter(f["properties"]["kind"] for f in areas["features"])
    assert kinds == {"district": len(city.districts), "grid": len(city.cells)}
    first = areas["features"][0]
    assert first["geometry"]["type"] == "Polygon"
    ring = first["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    assert set(first["properties"]) == {"id", "name", "kind", "district"}
    devices = json.loads(devices_path.read_text())["features"]
    assert len(devices) == 60
    by_id = {d.id: d for d in city.devices}
    for f in devices:
        d = by_id[f["properties"]["id"]]
        assert f["geometry"]["coordinates"] == [d.lon, d.lat]
        assert f["properties"]["grid"] == d.grid and f["properties"]["type"] == d.type


def test_written_city_reads_back_through_the_device_registry_files(tmp_path: Path) -> None:
    city = build_city(90, seed=4)
    areas_path, devices_path = write_city(city, tmp_path)
    geography = load_geography(areas_path)
    devices = read_devices(devices_path, CATALOGUE, geography)
    assert tuple(devices) == city.devices
    for d in devices:
        assert geography.locate(d.lat, d.lon) == (d.district, d.grid)


def test_written_devices_carry_the_attributes_the_rules_read(tmp_path: Path) -> None:
    city = build_city(200, seed=5)
    areas_path, devices_path = write_city(city, tmp_path)
    devices = read_devices(devices_path, CATALOGUE, load_geography(areas_path))
    index = {d.id: i for i, d in enumerate(city.devices)}
    gauges = [d for d in devices if d.type == "water_level"]
    roads = [d for d in devices if d.type == "traffic_flow"]
    assert gauges and roads
    assert all(not d.attributes for d in devices
               if d.type not in ("water_level", "traffic_flow", "structural", "noise"))
    monitors = [d for d in devices if d.type == "noise"]
    assert monitors and all(
        d.attributes == {"noise_zone": city.attrs["noise_zone"][index[d.id]]} for d in monitors)
    for road in roads:
        assert road.attributes == {"free_flow_kmh": city.attrs["free_flow_kmh"][index[road.id]]}
    for gauge in gauges:
        i = index[gauge.id]
        assert gauge.attributes == {
            "warning_level": city.attrs["warning_level_m"][i],
            "guaranteed_level": city.attrs["guaranteed_level_m"][i],
            "historical_max_level": city.attrs["historical_max_level_m"][i],
        }
        levels = gauge.attributes
        assert levels["warning_level"] < levels["guaranteed_level"] < levels[
            "historical_max_level"]
