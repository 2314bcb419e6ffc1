"""The OpenAPI document: every operation is named after its handler, uniquely across the app,
and request schemas carry examples."""

from __future__ import annotations

from collections import Counter

from tests.api.conftest import World


def test_operation_ids_are_the_unique_route_names(world: World) -> None:
    document = world.app.openapi()
    ids = Counter(
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    )
    assert ids and max(ids.values()) == 1, [name for name, n in ids.items() if n > 1]
    # a handler's name, not FastAPI's default (name + path + method)
    assert all(name.isidentifier() and "api_v1" not in name for name in ids), list(ids)
    paths = document["paths"]
    assert paths["/api/v1/incidents/{incident_id}/acknowledge"]["post"]["operationId"] == (
        "acknowledge_incident")
    assert paths["/api/v1/silences"]["get"]["operationId"] == "list_silences"
    assert paths["/api/v1/feeds/warnings.atom"]["get"]["operationId"] == "get_warnings_feed"


def test_silence_matchers_are_documented_with_examples(world: World) -> None:
    matcher = world.app.openapi()["components"]["schemas"]["MatcherModel"]
    assert {"field": "severity", "op": "=~", "value": "blue|yellow"} in matcher["examples"]
    assert matcher["properties"]["op"]["default"] == "="
