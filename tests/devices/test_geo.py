"""Districts and grid cells: parsing, validation, point location, neighbours."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from devices.errors import GeographyError
from devices.geo import Geography, load_geography, parse_geography


@pytest.fixture
def city(city_geojson: dict) -> Geography:
    return parse_geography(city_geojson)


def test_parse(city: Geography) -> None:
    assert [d.id for d in city.districts] == ["west", "east"]
    assert len(city.grids) == 8
    cell = next(g for g in city.grids if g.id == "e-1-0")
    assert (cell.kind, cell.district, cell.polygons[0][0][0]) == ("grid", "east", (3.0, 0.0))


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (0.5, 0.5, ("west", "w-0-0")),
        (1.5, 1.5, ("west", "w-1-1")),
        (0.2, 3.9, ("east", "e-1-0")),
        (1.99, 2.01, ("east", "e-0-1")),
        (5.0, 5.0, (None, None)),
        (-0.1, 1.0, (None, None)),
    ],
    ids=["w-0-0", "w-1-1", "e-1-0", "near-corner", "outside", "just-below"],
)
def test_locate(city: Geography, lat: float, lon: float, expected: tuple) -> None:
    assert city.locate(lat, lon) == expected


def test_locate_many_matches_locate(city: Geography) -> None:
    rng = np.random.default_rng(7)
    lat, lon = rng.uniform(-0.5, 2.5, 500), rng.uniform(-0.5, 4.5, 500)
    districts, grids = city.locate_many(lat, lon)
    assert [city.locate(a, b) for a, b in zip(lat, lon, strict=True)] == list(
        zip(districts, grids, strict=True)
    )
    inside = (lat > 0) & (lat < 2) & (lon > 0) & (lon < 4)
    assert [g is not None for g in grids] == inside.tolist()


def test_hole_is_outside() -> None:
    outer = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "ring", "kind": "district"},
                "geometry": {"type": "Polygon", "coordinates": [outer, hole]},
            }
        ],
    }
    geo = parse_geography(doc)
    assert geo.locate(5, 5) == (None, None)
    assert geo.locate(2, 2) == ("ring", None)


def test_neighbours(city: Geography) -> None:
    assert city.neighbours("w-0-0") == {"w-1-0", "w-0-1", "w-1-1"}
    assert city.neighbours("w-1-0") == {"w-0-0", "w-0-1", "w-1-1", "e-0-0", "e-0-1"}
    assert city.neighbours("e-1-1") == {"e-0-0", "e-0-1", "e-1-0"}
    assert city.neighbours("nope") == frozenset()


def test_geojson_round_trip(city: Geography, tmp_path: Path) -> None:
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(city.to_geojson()))
    assert load_geography(path) == city


def _mutate(doc: dict, index: int, path: tuple, value: object) -> dict:
    doc = copy.deepcopy(doc)
    target = doc["features"][index]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


BAD = [
    ("no-id", 0, ("properties", "id"), "", "properties.id"),
    ("bad-kind", 0, ("properties", "kind"), "city", "kind must be"),
    ("grid-without-district", 1, ("properties", "district"), None, "needs properties.district"),
    ("grid-unknown-district", 1, ("properties", "district"), "north", "unknown district"),
    ("duplicate-id", 2, ("properties", "id"), "w-0-0", "duplicate area ids"),
    ("not-polygon", 0, ("geometry", "type"), "Point", "must be a Polygon"),
    ("open-ring", 0, ("geometry", "coordinates", 0, 4), [9, 9], "not closed"),
    ("short-ring", 0, ("geometry", "coordinates", 0), [[0, 0], [1, 1], [0, 0]], "at least 4"),
    ("lat-out-of-range", 0, ("geometry", "coordinates", 0, 1), [2, 95], "bad [lon, lat]"),
    ("string-coordinate", 0, ("geometry", "coordinates", 0, 1), ["2", 0], "bad [lon, lat]"),
    ("flat", 0, ("geometry", "coordinates", 0), [[0, 0], [1, 0], [2, 0], [0, 0]], "zero area"),
]


@pytest.mark.parametrize(
    ("index", "path", "value", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_invalid(city_geojson: dict, index: int, path: tuple, value: object, message: str) -> None:
    with pytest.raises(GeographyError, match=re.escape(message)):
        parse_geography(_mutate(city_geojson, index, path, value))


def test_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    path.write_text("{nope")
    with pytest.raises(GeographyError, match=r"x\.geojson"):
        load_geography(path)
    with pytest.raises(GeographyError, match="FeatureCollection"):
        parse_geography([])


def _collection(*features: tuple[str, str, dict]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry,
         "properties": {"id": area_id, "kind": kind, "district": "harbour"}}
        for area_id, kind, geometry in features]}


MAINLAND = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
ISLAND = [[20, 20], [22, 20], [22, 22], [20, 22], [20, 20]]
LAGOON = [[20.5, 20.5], [21, 20.5], [21, 21], [20.5, 21], [20.5, 20.5]]


def test_a_district_with_islands_is_one_multipolygon_area(tmp_path: Path) -> None:
    harbour = {"type": "MultiPolygon", "coordinates": [[MAINLAND], [ISLAND, LAGOON]]}
    cell = {"type": "Polygon", "coordinates": [ISLAND]}
    geo = parse_geography(_collection(("harbour", "district", harbour), ("h-1", "grid", cell)))
    assert geo.locate(5, 5) == ("harbour", None)
    assert geo.locate(21.5, 21.5) == ("harbour", "h-1")  # on the island
    assert geo.locate(20.75, 20.75) == ("harbour", "h-1")  # the lagoon is the district's hole
    assert geo.locate(15, 15) == (None, None)  # the sea between them
    districts, _ = geo.locate_many([5, 21.5, 15, 10], [5, 21.5, 15, 5])
    assert districts == ["harbour", "harbour", None, "harbour"]  # a border point is inside
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(geo.to_geojson()))
    again = load_geography(path)
    assert again == geo and again.districts[0].geometry() == harbour


@pytest.mark.parametrize(("geometry", "message"), [
    ({"type": "MultiPolygon", "coordinates": []}, "must be a list of polygons"),
    ({"type": "MultiPolygon", "coordinates": [[MAINLAND], [[[1, 1], [2, 1], [2, 2], [1, 1]]]]},
     "invalid shape"),  # the second island lies inside the first
    ({"type": "Polygon", "coordinates": [[[0, 0], [3, 3], [3, 0], [0, 1], [0, 0]]]},
     "invalid shape: Self-intersection"),
], ids=["empty", "overlapping-islands", "bow-tie"])
def test_invalid_shapes_are_refused(geometry: dict, message: str) -> None:
    with pytest.raises(GeographyError, match=message):
        parse_geography(_collection(("harbour", "district", geometry)))
