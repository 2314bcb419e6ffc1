"""The OpenAPI document: every operation is named after its handler, uniquely across the app,
and the main request and response schemas carry examples their models accept."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from api.schemas.alerts import AlertPublic
from api.schemas.audit import AuditRecord
from api.schemas.devices import DeviceCreate, DevicePublic, DeviceUpdate, Readings
from api.schemas.incidents import IncidentPublic, NoteRequest, ReassignRequest, TransitionRequest
from api.schemas.rules import BacktestRequest, RuleCreate
from api.schemas.silences import SilenceCreate, SilencePublic
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


MAIN_BODIES: dict[str, type[BaseModel]] = {
    "DeviceCreate": DeviceCreate, "DeviceUpdate": DeviceUpdate, "RuleCreate": RuleCreate,
    "SilenceCreate": SilenceCreate, "TransitionRequest": TransitionRequest,
    "ReassignRequest": ReassignRequest, "NoteRequest": NoteRequest,
    "BacktestRequest": BacktestRequest, "AlertPublic": AlertPublic,
    "IncidentPublic": IncidentPublic, "DevicePublic": DevicePublic, "AuditRecord": AuditRecord,
    "Readings": Readings, "SilencePublic": SilencePublic,
}


def test_main_bodies_carry_examples_their_models_accept(world: World) -> None:
    schemas = world.app.openapi()["components"]["schemas"]
    for name, model in MAIN_BODIES.items():
        examples = schemas[name].get("examples")
        assert examples, name
        for example in examples:
            dumped = model.model_validate(example).model_dump(mode="json")
            twins = {k: example[k] for k in model.model_computed_fields if k in example}
            assert twins == {k: dumped[k] for k in twins}, name  # RFC 3339 == its epoch ms
