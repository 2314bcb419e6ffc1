"""`urbanwatch devices ...` through Typer's CliRunner, on a real SQLite file per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices.credentials import verify_password
from devices.geo import parse_geography
from urbanwatch.cli.devices import devices_app
from urbanwatch.services.mosquitto import Mosquitto

runner = CliRunner()
HEADER = "id,type,district,grid,lat,lon,department,status,installed,gateway\n"
GAUGE = ["--type", "water_level", "--district", "west", "--lat", "0.5", "--lon", "1.5"]


def _areas_doc() -> dict:
    """District "west" (lon 0..2, lat 0..2) with 1x1 grid cells w-<i>-<j>."""

    def square(lon: float, lat: float, size: float) -> list:
        return [
            [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
        ]

    features = [
        {
            "type": "Feature",
            "properties": {"id": "west", "kind": "district"},
            "geometry": {"type": "Polygon", "coordinates": square(0, 0, 2)},
        }
    ]
    for i in range(2):
        for j in range(2):
            features.append(
                {
                    "type": "Feature",
                    "properties": {"id": f"w-{i}-{j}", "kind": "grid", "district": "west"},
                    "geometry": {"type": "Polygon", "coordinates": square(i, j, 1)},
                }
            )
    return {"type": "FeatureCollection", "features": features}


@pytest.fixture
def state(tmp_path: Path) -> list[str]:
    return ["--state-dir", str(tmp_path / "state")]


def _run(*args: str):
    return runner.invoke(devices_app, list(args))


def _list(state: list[str], *filters: str) -> dict:
    result = _run("list", "--json", *filters, *state)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _fails(result, reason: str) -> None:
    assert result.exit_code == 1
    assert reason in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_add_and_list(state: list[str], tmp_path: Path) -> None:
    result = _run(
        "add",
        "aq-1",
        "--type",
        "air_quality",
        "--district",
        "west",
        "--lat",
        "0.5",
        "--lon",
        "1.5",
        "--department",
        "env",
        "--json",
        *state,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "aq-1"
    _run(
        "add",
        "wl-1",
        "--type",
        "water_level",
        "--district",
        "east",
        "--lat",
        "1",
        "--lon",
        "3",
        *state,
    )
    listed = _list(state)
    assert listed["total"] == 2
    assert listed["items"][0] == {
        "id": "aq-1",
        "type": "air_quality",
        "district": "west",
        "grid": "",
        "lat": 0.5,
        "lon": 1.5,
        "department": "env",
        "status": "active",
        "installed": None,
        "gateway": None,
        "attributes": {},
    }
    assert [d["id"] for d in _list(state, "--district", "east")["items"]] == ["wl-1"]
    assert _list(state, "--type", "noise") == {"total": 0, "items": []}
    assert (tmp_path / "state" / "urbanwatch.db").is_file()
    table = _run("list", *state)
    assert table.exit_code == 0 and "aq-1" in table.stdout and "2 of 2 devices" in table.stdout


def test_add_errors(state: list[str]) -> None:
    args = ["--district", "west", "--lat", "0.5", "--lon", "1.5", *state]
    assert _run("add", "aq-1", "--type", "air_quality", *args).exit_code == 0
    _fails(_run("add", "aq-1", "--type", "air_quality", *args), "already exist")
    _fails(_run("add", "x-1", "--type", "rocket", *args), "unknown device type 'rocket'")
    _fails(_run("add", "a/b", "--type", "noise", *args), "bad device id")
    _fails(_run("add", "a:b", "--type", "noise", *args), "':' at position 1 is not allowed")
    _fails(_run("add", "urbanwatch.x", "--type", "noise", *args), "is reserved")
    bad_lat = ["--district", "west", "--lat", "95", "--lon", "1", *state]
    _fails(_run("add", "x-2", "--type", "noise", *bad_lat), "lat 95.0 outside")
    assert _list(state)["total"] == 1


def test_add_with_attributes(state: list[str]) -> None:
    levels = ["--attr", "warning_level=3.5", "--attr", "guaranteed_level= 4"]
    levels += ["--attr", "max_level=5e0"]
    result = _run("add", "wl-1", *GAUGE, *levels, "--json", *state)
    assert result.exit_code == 0, result.output
    expected = {"guaranteed_level": 4.0, "max_level": 5.0, "warning_level": 3.5}
    assert json.loads(result.stdout)["attributes"] == expected
    assert _list(state)["items"][0]["attributes"] == expected


@pytest.mark.parametrize(
    ("attr", "reason"),
    [
        ("warning_level", "--attr 'warning_level': expected NAME=VALUE"),
        ("warning_level=", "--attr 'warning_level=': expected NAME=VALUE"),
        ("=3", "--attr '=3': expected NAME=VALUE"),
        ("warning_level=high", "attribute 'warning_level' must be a number, not 'high'"),
        ("warning_level=nan", "attribute 'warning_level' must be finite"),
        ("warning-level=3", "attribute name 'warning-level' is not an identifier"),
    ],
    ids=["no-equals", "no-value", "no-name", "not-a-number", "not-finite", "bad-name"],
)
def test_add_refuses_bad_attributes(state: list[str], attr: str, reason: str) -> None:
    _fails(_run("add", "wl-1", *GAUGE, "--attr", attr, *state), reason)
    assert _list(state)["total"] == 0


def test_add_refuses_an_attribute_given_twice(state: list[str]) -> None:
    twice = ["--attr", "warning_level=3", "--attr", "warning_level=4"]
    _fails(_run("add", "wl-1", *GAUGE, *twice, *state), "--attr warning_level given twice")
    assert _list(state)["total"] == 0


def test_import_csv_twice(state: list[str], tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    rows = "".join(f"n-{i},noise,west,,{i / 100},1,,,,\n" for i in range(50))
    path.write_text(HEADER + rows)
    first = _run("import", str(path), *state)
    assert first.exit_code == 0, first.output
    assert "imported 50 devices (50 new, 0 updated)" in first.stdout
    second = _run("import", str(path), *state)
    assert "imported 50 devices (0 new, 50 updated)" in second.stdout
    assert _list(state)["total"] == 50


def test_import_geojson_with_areas_fills_location(state: list[str], tmp_path: Path) -> None:
    areas = tmp_path / "areas.geojson"
    areas.write_text(json.dumps(_areas_doc()))
    devices = tmp_path / "devices.geojson"
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [1.5, 0.5]},
        "properties": {"id": "gas-1", "type": "gas"},
    }
    devices.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    result = _run("import", str(devices), "--areas", str(areas), *state)
    assert result.exit_code == 0, result.output
    assert "imported 1 devices (1 new, 0 updated), 5 areas" in result.stdout
    (item,) = _list(state)["items"]
    assert (item["district"], item["grid"]) == ("west", "w-1-0")
    # stored areas are used later: `add` without --grid locates the cell
    _run(
        "add",
        "gas-2",
        "--type",
        "gas",
        "--district",
        "west",
        "--lat",
        "1.5",
        "--lon",
        "0.5",
        *state,
    )
    assert _list(state, "--district", "west")["items"][1]["grid"] == "w-0-1"
    assert parse_geography(_areas_doc()).locate(1.5, 0.5) == ("west", "w-0-1")


def test_import_bad_file(state: list[str], tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(HEADER + "ok-1,noise,west,,1,1,,,,\nbad,rocket,west,,1,1,,,,\n")
    _fails(_run("import", str(path), *state), "line 3: unknown device type 'rocket'")
    assert _list(state)["total"] == 0  # nothing written
    _fails(_run("import", str(tmp_path / "absent.csv"), *state), "No such file")
    areas = tmp_path / "areas.geojson"
    areas.write_text('{"type": "FeatureCollection", "features": [{}]}')
    _fails(_run("import", str(path), "--areas", str(areas), *state), "feature 0")


def test_set_status_and_filter(state: list[str]) -> None:
    _run("add", "n-1", "--type", "noise", "--district", "w", "--lat", "1", "--lon", "1", *state)
    result = _run("set-status", "n-1", "maintenance", *state)
    assert (result.exit_code, result.stdout.strip()) == (0, "n-1: maintenance")
    assert _list(state, "--status", "maintenance")["total"] == 1
    _fails(_run("set-status", "nope", "retired", *state), "no device 'nope'")


def test_config_file_and_db_url(tmp_path: Path) -> None:
    config = tmp_path / "urbanwatch.toml"
    config.write_text(f'state_dir = "{tmp_path / "from-config"}"\n')
    args = ["--type", "noise", "--district", "w", "--lat", "1", "--lon", "1"]
    assert _run("add", "n-1", *args, "--config", str(config)).exit_code == 0
    assert (tmp_path / "from-config" / "urbanwatch.db").is_file()
    url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    assert _run("add", "n-2", *args, "--db-url", url).exit_code == 0
    assert _list(["--db-url", url])["total"] == 1
    _fails(_run("list", "--config", str(tmp_path / "missing.toml")), "not found")


def _broker(tmp_path: Path) -> Mosquitto:
    """The managed broker of the `state` folder (its files, wherever they are kept)."""
    return Mosquitto(tmp_path / "state" / "services", 0)


def _passwd(tmp_path: Path) -> dict[str, str]:
    text = _broker(tmp_path).password_path.read_text()
    return dict(line.split(":", 1) for line in text.splitlines())


def test_add_prints_the_mqtt_password_once_and_stores_its_hash(
    state: list[str], tmp_path: Path
) -> None:
    (tmp_path / "state" / "services" / "mosquitto").mkdir(parents=True)  # a managed broker
    args = ["--type", "noise", "--district", "w", "--lat", "1", "--lon", "1", *state]

    added = json.loads(_run("add", "n-1", *args, "--json").stdout)
    text = _run("add", "n-2", *args)

    login = added["mqtt"]
    assert login["username"] == "n-1" and len(login["password"]) >= 24
    assert "n-2  MQTT password: " in text.stdout and "shown only once" in text.stdout
    stored = _passwd(tmp_path)
    assert verify_password(login["password"], stored["n-1"])
    assert login["password"] not in (tmp_path / "state" / "urbanwatch.db").read_bytes().decode(
        "latin-1"
    )
    assert {"urbanwatch.ingest", "urbanwatch.dispatch", "urbanwatch.simulator"} <= set(stored)
    acl = _broker(tmp_path).acl_path.read_text()
    assert "user n-1\ntopic write city/w/n-1/data\ntopic write city/w/n-1/batch\n" in acl


def test_import_issues_logins_for_new_devices_only(state: list[str], tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(HEADER + "n-1,noise,west,,1,1,,,,\nn-2,noise,west,,1,1,,,,\n")
    first = json.loads(_run("import", str(path), "--json", *state).stdout)
    path.write_text(HEADER + "n-1,noise,east,,1,1,,,,\nn-3,noise,west,,1,1,,,,\n")
    second = json.loads(_run("import", str(path), "--json", *state).stdout)

    assert [c["device_id"] for c in first["credentials"]] == ["n-1", "n-2"]
    assert (second["new"], second["updated"]) == (1, 1)
    assert [c["device_id"] for c in second["credentials"]] == ["n-3"]
    assert not (tmp_path / "state" / "services").exists()  # no managed broker set up: untouched


def test_revoke_and_rotate(state: list[str], tmp_path: Path) -> None:
    (tmp_path / "state" / "services" / "mosquitto").mkdir(parents=True)
    args = ["--type", "noise", "--district", "w", "--lat", "1", "--lon", "1", *state]
    first = json.loads(_run("add", "n-1", *args, "--json").stdout)["mqtt"]["password"]

    rotated = json.loads(_run("rotate", "n-1", "--json", *state).stdout)["password"]
    assert rotated != first and verify_password(rotated, _passwd(tmp_path)["n-1"])
    revoked = _run("revoke", "n-1", *state)
    assert (revoked.exit_code, revoked.stdout.strip()) == (0, "n-1: MQTT login revoked")
    assert "n-1" not in _passwd(tmp_path)
    assert "user n-1" not in _broker(tmp_path).acl_path.read_text()
    _fails(_run("rotate", "nope", *state), "no device 'nope'")
    _fails(_run("revoke", "nope", *state), "has no MQTT credentials")
