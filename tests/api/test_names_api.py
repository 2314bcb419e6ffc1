"""A bad id anywhere in a request is a 422 that gives the grammar's reason (never a 500).

Devices are covered with the CLI in tests/urbanwatch/cli/test_devices_parity.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.context import RulesPart
from api.security.principal import Role
from devices.catalogue import load_catalogue
from devices.registry import Registry
from rules.language.rulefile import seed_rule_file
from tests.api.conftest import DEVICES, World
from tests.support.auth import bearer

ADMIN = bearer(Role.admin, subject="root")
RULE = {"id": "gas-x", "category": "safety", "match": {"device_type": ["gas"]},
        "when": "value >= 20"}  # fmt: skip
SILENCE = {"starts_at": "2026-11-18T00:00:00Z", "ends_at": "2026-11-19T00:00:00Z",
           "reason": "works"}  # fmt: skip


def _silence(field: str, value: str) -> dict[str, Any]:
    return {**SILENCE, "matchers": [{"field": field, "value": value}]}


CASES = [
    ("silence-device", "POST", "/api/v1/silences", _silence("device", "aq 1"),
     "bad device id 'aq 1': ' ' at position 2"),
    ("silence-district", "POST", "/api/v1/silences", _silence("district", "east\nwest"),
     "bad district id 'east\\nwest': '\\n' at position 4"),
    ("silence-rule", "POST", "/api/v1/silences", _silence("rule", "r#"),
     "bad rule id 'r#': '#' at position 1"),
    ("silence-id", "POST", "/api/v1/silences/sil x/expire", None,
     "bad silence id 'sil x'"),
    ("api-key-team", "POST", "/api/v1/api-keys",
     {"name": "k", "role": "responder", "teams": ["gas/+"]}, "bad team id 'gas/+'"),
    ("rule-id", "POST", "/api/v1/rules", {**RULE, "id": "gas x"},
     "bad rule id 'gas x': ' ' at position 3"),
    ("rule-match-grid", "POST", "/api/v1/rules",
     {**RULE, "match": {"device_type": ["gas"], "grid": ["g\t1"]}},
     "bad grid cell id 'g\\t1': '\\t' at position 1"),
]  # fmt: skip


@pytest.fixture
async def http(world: World, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path / "state" / "rules.yaml"
    seed_rule_file(path)
    registry = Registry.build(load_catalogue(), DEVICES)
    context = dataclasses.replace(world.context, rules=RulesPart(path, lambda: registry))
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize(("method", "path", "body", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
async def test_a_bad_id_is_refused_with_the_reason(
    http: httpx.AsyncClient, method: str, path: str, body: dict | None, reason: str
) -> None:
    response = await http.request(method, path, json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert reason in response.text.replace("\\\\", "\\")  # JSON escapes the repr's backslash
