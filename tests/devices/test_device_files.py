"""Device files: CSV and GeoJSON parsing, errors naming file and row, filling by location."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from devices.catalogue import load_catalogue
from devices.errors import DeviceFileError
from devices.files import read_devices, write_devices_geojson
from devices.geo import parse_geography
from devices.registry import Device, DeviceStatus

CATALOGUE = load_catalogue()
HEADER = "id,type,district,grid,lat,lon,department,status,installed,gateway\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "devices.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_csv_full_and_minimal(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "aq-1,air_quality,west,w-0-0,0.5,0.5,env,maintenance,2023-05-17,gw-1\n"
        "wl-1,water_level,east,,1.5,2.5,,,,\n",
    )
    assert read_devices(path, CATALOGUE) == [
        Device(
            "aq-1",
            "air_quality",
            "west",
            0.5,
            0.5,
            "w-0-0",
            "env",
            DeviceStatus.MAINTENANCE,
            date(2023, 5, 17),
            "gw-1",
        ),
        Device("wl-1", "water_level", "east", 1.5, 2.5),
    ]


def test_csv_only_required_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "n-1,noise,west,1,1\n", header="id,type,district,lat,lon\n")
    assert read_devices(path, CATALOGUE) == [Device("n-1", "noise", "west", 1.0, 1.0)]


def test_csv_fills_district_and_grid(tmp_path: Path, city_geojson: dict) -> None:
    path = _csv(tmp_path, "a,noise,,,0.5,3.5,,,,\nb,noise,west,,1.5,0.5,,,,\n")
    devices = read_devices(path, CATALOGUE, parse_geography(city_geojson))
    assert [(d.district, d.grid) for d in devices] == [("east", "e-1-0"), ("west", "w-0-1")]


CSV_ERRORS = [
    ("unknown-type", "x,rocket,west,,1,1,,,,\n", "line 2: unknown device type 'rocket'"),
    ("bad-lat", "x,noise,west,,north,1,,,,\n", "line 2: lat must be a number"),
    ("lat-range", "x,noise,west,,91,1,,,,\n", "line 2: lat 91 outside"),
    ("lon-nan", "x,noise,west,,1,nan,,,,\n", "line 2: lon nan outside"),
    ("no-district", "x,noise,,,1,1,,,,\n", "line 2: district is missing"),
    ("bad-status", "x,noise,west,,1,1,,broken,,\n", "line 2: unknown status 'broken'"),
    ("bad-date", "x,noise,west,,1,1,,,17/05/2023,\n", "line 2: installed must be YYYY-MM-DD"),
    ("bad-id", "a/b,noise,west,,1,1,,,,\n", "line 2: bad device id 'a/b'"),
    ("duplicate", "x,noise,west,,1,1,,,,\nx,noise,west,,1,1,,,,\n", "line 3: duplicate id 'x'"),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in CSV_ERRORS], ids=[c[0] for c in CSV_ERRORS]
)
def test_csv_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(DeviceFileError) as info:
        read_devices(_csv(tmp_path, body), CATALOGUE)
    assert info.value.path.endswith("devices.csv")
    assert info.value.problems == [message] or message in info.value.problems[0]


def test_csv_reports_every_bad_row(tmp_path: Path) -> None:
    body = "a,noise,west,,1,1,,,,\nb,rocket,west,,1,1,,,,\nc,noise,west,,x,1,,,,\n"
    with pytest.raises(DeviceFileError) as info:
        read_devices(_csv(tmp_path, body), CATALOGUE)
    assert [p.split(":")[0] for p in info.value.problems] == ["line 3", "line 4"]
    assert "devices.csv" in str(info.value)


def test_csv_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(DeviceFileError, match=r"missing columns \['lat', 'lon'\]"):
        read_devices(_csv(tmp_path, "a,noise\n", header="id,type\n"), CATALOGUE)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeviceFileError, match="unknown file type"):
        read_devices(tmp_path / "devices.xlsx", CATALOGUE)
    with pytest.raises(DeviceFileError, match="No such file"):
        read_devices(tmp_path / "absent.csv", CATALOGUE)


def test_geojson_round_trip(tmp_path: Path) -> None:
    devices = [
        Device(
            "aq-1",
            "air_quality",
            "west",
            0.5,
            0.25,
            "w-0-0",
            "env",
            DeviceStatus.RETIRED,
            date(2020, 1, 2),
            "gw-9",
        ),
        Device("wl-1", "water_level", "east", 1.5, 2.5,
               attributes={"warning_level": 3.5, "guaranteed_level": 4.25}),
    ]
    path = tmp_path / "devices.geojson"
    write_devices_geojson(devices, path)
    doc = json.loads(path.read_text())
    assert doc["features"][0]["geometry"] == {"type": "Point", "coordinates": [0.25, 0.5]}
    assert doc["features"][1]["properties"]["attributes"] == {
        "guaranteed_level": 4.25, "warning_level": 3.5}
    assert read_devices(path, CATALOGUE) == devices


GEOJSON_ERRORS = [
    ("not-point", {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, {}, "feature 0: lat"),
    ("no-properties", {"type": "Point", "coordinates": [1, 1]}, None, "feature 0: bad device id"),
    ("bad-type", {"type": "Point", "coordinates": [1, 1]}, {"type": "x"}, "unknown device type"),
    ("lon-range", {"type": "Point", "coordinates": [200, 1]}, {}, "feature 0: lon 200 outside"),
]


@pytest.mark.parametrize(
    ("geometry", "props", "message"),
    [c[1:] for c in GEOJSON_ERRORS],
    ids=[c[0] for c in GEOJSON_ERRORS],
)
def test_geojson_errors(tmp_path: Path, geometry: dict, props: dict | None, message: str) -> None:
    base = {"id": "n-1", "type": "noise", "district": "west"}
    properties = None if props is None else base | props
    feature = {"type": "Feature", "geometry": geometry, "properties": properties}
    path = tmp_path / "devices.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(DeviceFileError) as info:
        read_devices(path, CATALOGUE)
    assert message in info.value.problems[0]


def test_geojson_not_a_collection(tmp_path: Path) -> None:
    path = tmp_path / "devices.geojson"
    path.write_text("[1, 2]")
    with pytest.raises(DeviceFileError, match="not a GeoJSON FeatureCollection"):
        read_devices(path, CATALOGUE)
    path.write_text("{")
    with pytest.raises(DeviceFileError, match="not JSON"):
        read_devices(path, CATALOGUE)


def test_csv_attribute_columns(tmp_path: Path) -> None:
    header = "id,type,district,lat,lon,attr.warning_level,attr.guaranteed_level\n"
    body = "wl-1,water_level,east,1.5,2.5,3.5, 4.0\nn-1,noise,west,1,1,,\n"
    wl, n = read_devices(_csv(tmp_path, body, header), CATALOGUE)
    assert wl.attributes == {"warning_level": 3.5, "guaranteed_level": 4.0}
    assert n.attributes == {}
    assert wl == Device("wl-1", "water_level", "east", 1.5, 2.5,
                        attributes={"guaranteed_level": 4, "warning_level": 3.5})
    assert hash(wl) == hash(Device("wl-1", "water_level", "east", 1.5, 2.5,
                                   attributes={"warning_level": 3.5, "guaranteed_level": 4.0}))


ATTRIBUTE_ERRORS = [
    ("not-a-number", "attr.warning_level", "high",
     "line 2: device wl-1: attribute 'warning_level' must be a number, not 'high'"),
    ("not-finite", "attr.warning_level", "nan",
     "line 2: device wl-1: attribute 'warning_level' must be finite, not nan"),
    ("bad-name", "attr.warning-level", "3",
     "line 2: device wl-1: attribute name 'warning-level' is not an identifier"),
    ("leading-digit", "attr.2nd_level", "3",
     "line 2: device wl-1: attribute name '2nd_level' is not an identifier"),
]


@pytest.mark.parametrize(
    ("column", "cell", "message"), [c[1:] for c in ATTRIBUTE_ERRORS],
    ids=[c[0] for c in ATTRIBUTE_ERRORS],
)
def test_csv_bad_attributes(tmp_path: Path, column: str, cell: str, message: str) -> None:
    path = _csv(tmp_path, f"wl-1,water_level,east,1.5,2.5,{cell}\nn-1,noise,west,1,1,\n",
                header=f"id,type,district,lat,lon,{column}\n")
    with pytest.raises(DeviceFileError) as info:
        read_devices(path, CATALOGUE)
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith(message)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"attributes": [3.0]}, "device wl-1: attributes must be an object of numbers"),
        ({"attributes": {"warning_level": True}}, "'warning_level' must be a number, not True"),
        ({"attributes": {"warning_level": 1e400}}, "'warning_level' must be finite, not inf"),
        ({"attributes": {"warning_level": 3}, "attr.warning_level": 3},
         "device wl-1: attributes ['warning_level'] given twice"),
    ],
    ids=["not-an-object", "boolean", "infinite", "twice"],
)
def test_geojson_bad_attributes(tmp_path: Path, props: dict, message: str) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.5, 1.5]},
               "properties": {"id": "wl-1", "type": "water_level", "district": "east"} | props}
    path = tmp_path / "devices.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(DeviceFileError) as info:
        read_devices(path, CATALOGUE)
    assert info.value.problems[0].startswith("feature 0: ") and message in info.value.problems[0]
