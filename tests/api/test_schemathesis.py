"""Property-based run of schemathesis over the app's whole OpenAPI document, against the real
app served by uvicorn (SQLite, InfluxDB, an AlertService holding incidents).

Every operation gets a bounded number of generated requests, valid and invalid ones, as an
admin and as a responder; no response may be a server error or break its documented schema.
Path parameters are sometimes the ids of real objects, so the 2xx paths are reached too.
All failures are collected and reported together, one line per operation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.security.principal import Role
from tests.api.conftest import DEVICES, GAS_TEAM, World
from tests.support.auth import bearer

EXAMPLES = 4  # per operation and role: keeps the whole run well under a minute
REPORT_CHARS = 1500  # of each failure: the check, the response and a curl line to reproduce
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as found
    suppress_health_check=list(HealthCheck),
)


def strategy(operation: APIOperation, known: dict[str, str]) -> st.SearchStrategy[Case]:
    """Valid and invalid requests, plus valid ones aimed at real objects."""
    modes = [operation.as_strategy(m) for m in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    real = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
    if real:
        modes.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    return st.one_of(modes)


def fuzz(operation: APIOperation, base_url: str, headers: dict[str, str],
         known: dict[str, str]) -> str | None:  # fmt: skip
    """Run one operation's examples; the first failure as text, or None."""
    session = requests.Session()

    @PROFILE
    @given(case=strategy(operation, known))
    def run(case: Case) -> None:
        case.call_and_validate(base_url=base_url, session=session, headers=headers,
                               checks=CHECKS)  # fmt: skip

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
        return f"{operation.method.upper()} {operation.path}: {str(exc)[:REPORT_CHARS]}"
    finally:
        session.close()
    return None


def fuzz_all(schema: schemathesis.BaseSchema, base_url: str, headers: dict[str, str],
             known: dict[str, str], done: Callable[[str], None]) -> list[str]:  # fmt: skip
    failures = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the OpenAPI document is invalid: {result.err()}")
            continue
        operation = result.ok()
        done(operation.label)
        failure = fuzz(operation, base_url, headers, known)
        if failure is not None:
            failures.append(failure)
    return failures


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "headers",
    [bearer(Role.admin, subject="fuzz-admin"), bearer(Role.responder, GAS_TEAM, subject="fuzz")],
    ids=["admin", "responder"],
)
async def test_no_server_errors_and_responses_match_the_schema(
    world: World, served: str, headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_dict(world.app.openapi())
    known = {"incident_id": world.incident_of[GAS_TEAM], "device_id": DEVICES[0].id}
    tested: list[str] = []
    failures = await asyncio.to_thread(fuzz_all, schema, served, headers, known, tested.append)
    assert len(tested) == sum(len(ops) for ops in world.app.openapi()["paths"].values())
    assert "GET /api/v1/incidents/{incident_id}" in tested
    assert not failures, "\n\n".join(failures)
