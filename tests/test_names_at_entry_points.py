"""Every file that brings ids in refuses a bad one at load, saying where and why.

One table: (file kind, text with one bad id, the problem reported). The reason is always the
grammar's (`devices.names`), so a file, the API and the CLI refuse the same id alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from alerts.errors import RoutingError
from alerts.routing import parse_routing
from devices.catalogue import load_catalogue
from devices.errors import DeviceError
from devices.files import parse_devices
from devices.geo import parse_geography
from rules.errors import RuleError
from rules.language.loader import load_rules

CATALOGUE = load_catalogue()
ROUTING = """\
version: 1
handlers:
  - {id: gas, name: Gas, districts: [dongcheng], teams: [{id: gas-team, name: G}]}
  - {id: ecc, name: ECC, teams: [{id: ecc-duty, name: D}]}
policies:
  - {id: p, ack_deadline_s: {red: 300}, levels: [ecc-duty]}
routes:
  - {match: {districts: [dongcheng]}, handler: gas, team: gas-team, policy: p}
  - {handler: ecc, team: ecc-duty, policy: p}
"""
RULES = """\
- id: gas-high
  category: safety
  match: {device_type: gas, district: dongcheng}
  when: value > 25
"""
SQUARE = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]


def _areas(district_id: str, grid_id: str = "g-0-0") -> str:
    def feature(props: dict) -> dict:
        return {"type": "Feature", "properties": props,
                "geometry": {"type": "Polygon", "coordinates": SQUARE}}  # fmt: skip

    return json.dumps({"type": "FeatureCollection", "features": [
        feature({"id": district_id, "kind": "district", "name": "东城区"}),
        feature({"id": grid_id, "kind": "grid", "district": district_id}),
    ]})  # fmt: skip


def _device_geojson(device_id: str) -> str:
    props = {"id": device_id, "type": "gas", "district": "dongcheng"}
    feature = {"type": "Feature", "properties": props,
               "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}}  # fmt: skip
    return json.dumps({"type": "FeatureCollection", "features": [feature]})


def _problems(load: Callable[[str], object], text: str) -> str:
    try:
        load(text)
    except RoutingError as exc:
        return "; ".join(exc.problems)
    except (DeviceError, RuleError) as exc:
        return str(exc)
    raise AssertionError("accepted")


LOADERS: dict[str, Callable[[str], object]] = {
    "routing": lambda text: parse_routing(text, "routing.yaml"),
    "rules": load_rules,
    "areas": lambda text: parse_geography(json.loads(text), "areas.geojson"),
    "csv": lambda text: parse_devices(text.encode(), ".csv", CATALOGUE, source="d.csv"),
    "geojson": lambda text: parse_devices(text.encode(), ".geojson", CATALOGUE, source="d.json"),
}
CASES = [
    ("team-newline", "routing", ROUTING.replace("{id: gas-team", '{id: "gas\\nuser x"'),
     "line 3, column 63, handlers.0.teams.0.id: Value error, bad team id 'gas\\nuser x'"),
    ("handler-space", "routing", ROUTING.replace("{id: gas,", "{id: gas co,"),
     "line 3, column 10, handlers.0.id: Value error, bad department id 'gas co'"),
    ("route-district", "routing", ROUTING.replace("districts: [dongcheng]}", "districts: [d/#]}"),
     "line 8, column 26, routes.0.match.districts.0: Value error, bad district id 'd/#'"),
    ("policy", "routing", ROUTING.replace("{id: p,", "{id: 'p+',"),
     "line 6, column 10, policies.0.id: Value error, bad escalation policy id 'p+'"),
    ("rule-id", "rules", RULES.replace("gas-high", "gas high"),
     "line 1, column 7 (rule gas high): id: Value error, bad rule id 'gas high'"),
    ("rule-district", "rules", RULES.replace("district: dongcheng", "district: 东城"),
     "line 3, column 10 (rule gas-high): match.district.0: Value error, bad district id '东城'"),
    ("area-district", "areas", _areas("dong cheng"),
     "areas.geojson feature 0: bad district id 'dong cheng': ' ' at position 4"),
    ("area-grid", "areas", _areas("dongcheng", "g\r1"),
     "areas.geojson feature 1: bad grid cell id 'g\\r1': '\\r' at position 1"),
    ("device-csv", "csv", "id,type,district,lat,lon\ngs+1,gas,dongcheng,0.5,0.5\n",
     "d.csv: 1 invalid rows: line 2: bad device id 'gs+1': '+' at position 2"),
    ("device-geojson", "geojson", _device_geojson("gs\u20281"),
     "d.json: 1 invalid rows: feature 0: bad device id 'gs\\u20281': '\\u2028' at position 2"),
]  # fmt: skip


@pytest.mark.parametrize(("loader", "text", "problem"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_bad_id_is_refused_at_load_with_where_and_why(
    loader: str, text: str, problem: str
) -> None:
    assert problem in _problems(LOADERS[loader], text)


@pytest.mark.parametrize("loader", ["routing", "rules"])
def test_the_good_files_load(loader: str) -> None:
    LOADERS[loader](ROUTING if loader == "routing" else RULES)
