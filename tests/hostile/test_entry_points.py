"""Injected names through every entry point of a running platform — the API, the CLI, CSV and
GeoJSON imports, the routing file and rules — are refused, and nothing of them is stored,
while ingest goes on (`conftest.steady`)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import yaml

from tests.hostile.conftest import Hostile

# Each would split a topic, an ACL or password line, a line of line protocol or a log line,
# or match other topics (MQTT wildcards), were it let through.
INJECTED = [
    "aq/../../x", "aq+", "aq#", "aq 1", "aq\n1", "aq\r\nuser x", "aq:1", "aq\t1", "$SYS",
    "a" * 65, "aq'1", 'aq"1', "aq,district=x", "aq\\1", "\uff41\uff51-1",
]
POINT = {"type": "rain_gauge", "district": "dongcheng", "lat": 39.93, "lon": 116.45}


def api(hostile: Hostile) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=hostile.api_url, headers=hostile.admin, timeout=30)


async def device_ids(http: httpx.AsyncClient) -> set[str]:
    listed = await http.get("/api/v1/devices", params={"limit": 1000})
    return {d["id"] for d in listed.json()["items"]}


async def test_the_api_refuses_injected_device_ids(hostile: Hostile) -> None:
    async with api(hostile) as http:
        before = await device_ids(http)
        for bad in INJECTED:
            response = await http.post("/api/v1/devices", json={"id": bad, **POINT})
            assert response.status_code == 422, (bad, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        injected_district = await http.post("/api/v1/devices", json={
            **POINT, "id": "rg-new", "district": "dongcheng/#"})
        assert injected_district.status_code == 422
        assert await device_ids(http) == before


async def test_the_cli_refuses_what_the_api_refuses(hostile: Hostile) -> None:
    for bad in ("aq/../x", "aq+", "aq#", "aq 1", "aq\n1", "$SYS"):
        code, output = await asyncio.to_thread(
            hostile.cli, "devices", "add", bad, "--type", "rain_gauge", "--district",
            "dongcheng", "--lat", "39.93", "--lon", "116.45")
        assert code != 0 and "Traceback" not in output, output
    code, output = await asyncio.to_thread(
        hostile.cli, "devices", "add", "rg-cli", "--type", "rain_gauge", "--district",
        "nowhere", "--lat", "39.93", "--lon", "116.45")
    assert code != 0 and "nowhere" in output, output  # an unknown district, as the API says
    async with api(hostile) as http:
        assert not {i for i in await device_ids(http) if i.startswith(("aq/", "aq+", "rg-cli"))}


@pytest.mark.parametrize("kind", ["csv", "geojson"])
async def test_imports_refuse_a_file_with_one_injected_id_whole(
    hostile: Hostile, kind: str
) -> None:
    good, bad = "rg-imp-1", "rg-imp-2\ncity/#"
    if kind == "csv":
        rows = [f"{i},rain_gauge,dongcheng,39.93,116.45" for i in (good, json.dumps(bad))]
        body, media = "id,type,district,lat,lon\n" + "\n".join(rows) + "\n", "text/csv"
    else:
        features = [{"type": "Feature", "properties": {"id": i, "type": "rain_gauge",
                                                       "district": "dongcheng"},
                     "geometry": {"type": "Point", "coordinates": [116.45, 39.93]}}
                    for i in (good, bad)]
        body = json.dumps({"type": "FeatureCollection", "features": features})
        media = "application/geo+json"
    async with api(hostile) as http:
        response = await http.post("/api/v1/devices/import", content=body.encode(),
                                   headers={"content-type": media})
        assert response.status_code == 422, response.text
        assert response.json()["problems"], response.text
        assert good not in await device_ids(http)  # all or nothing


async def test_a_routing_file_with_an_injected_team_is_refused_and_the_old_one_stays(
    hostile: Hostile,
) -> None:
    path = hostile.process.env["URBANWATCH_ALERTS__ROUTING_PATH"]
    with open(path, encoding="utf-8") as f:
        good = f.read()
    config = yaml.safe_load(good)
    config["handlers"][0]["teams"][0]["id"] = "gas/#\nuser attacker"
    async with api(hostile) as http:
        before = (await http.get("/api/v1/routing")).json()
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(yaml.safe_dump(config, sort_keys=False))
            refused = await http.post("/api/v1/routing/reload")
            assert refused.status_code == 422, refused.text
            assert "gas/#" in json.dumps(refused.json()["problems"])
            assert (await http.get("/api/v1/routing")).json() == before
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(good)
        assert (await http.post("/api/v1/routing/reload")).status_code == 200


async def test_rules_with_injected_ids_are_refused_as_data_and_as_text(hostile: Hostile) -> None:
    rule = {"category": "environment", "match": {"device_type": "air_quality",
                                                 "metric": "pm25"}, "when": "value > 500"}
    async with api(hostile) as http:
        before = [r["id"] for r in (await http.get("/api/v1/rules")).json()["items"]]
        for bad in ("r/x", "r\nx", "r x", "r+", "r#"):
            created = await http.post("/api/v1/rules", json={"id": bad, **rule})
            assert created.status_code == 422, (bad, created.text)
        text = yaml.safe_dump([{"id": "r\n- id: evil", **rule}])
        checked = await http.post("/api/v1/rules/validate", json={"text": text})
        assert checked.status_code == 200 and checked.json()["valid"] is False
        inline = await http.post("/api/v1/rules/backtest", json={
            "rule": {"id": "r#", **rule}, "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-02T00:00:00Z"})
        assert inline.status_code == 422
        assert [r["id"] for r in (await http.get("/api/v1/rules")).json()["items"]] == before
