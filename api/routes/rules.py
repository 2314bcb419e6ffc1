"""Rules: the rule file the engine runs, edited, validated and backtested through the API.

Writes go through `api.rule_store.RuleStore`, which validates the whole new set before it
replaces the file atomically; the engine picks the change up on its next tick, and the open alerts
of a changed or deleted rule are closed then (`urbanwatch.judging`). A refused rule is a 422
naming the field and column, an invalid file on disk a 409 (`api.problems`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from api.backtesting import backtest_range
from api.deps import BoundsDep, Caller, CityZoneDep, InfluxDep, RulesPartDep, RuleStoreDep, require
from api.rule_store import RuleStore
from api.schemas.problems import Problem
from api.schemas.rules import (
    BacktestRequest,
    BacktestResult,
    RuleCreate,
    RuleList,
    RuleProblem,
    RuleProblemBody,
    RulePublic,
    RuleSpec,
    RuleValidation,
    ValidationResult,
)
from api.security.principal import Principal, Role
from devices.clock import now_ms
from rules.detection import Category
from rules.errors import RuleRejected, RuleTextRefused
from rules.language.model import Rule
from rules.language.rulefile import check_set, referrers, validate_text

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])
Writer = Annotated[Principal, Depends(require(Role.admin, Role.operator))]
DAY_MS = 86_400_000
MAX_EVENTS = 1000  # per rule and kind in a backtest response
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such rule"}
}
REJECTED: dict[int | str, dict[str, Any]] = {
    422: {"model": RuleProblemBody, "description": "the rule is invalid (field, column, reason)"},
    409: {"model": Problem, "description": "the rule file on disk is invalid; fix it first"},
    503: {"model": Problem, "description": "no writable rule file is configured"},
}


@router.get("", summary="List the rules the engine runs")
async def list_rules(
    caller: Caller, store: RuleStoreDep, category: Category | None = None,
    enabled: bool | None = None,
) -> RuleList:
    rules = [
        r for r in await store.read()
        if category in (None, r.category) and enabled in (None, r.enabled)
    ]
    return RuleList(items=[RulePublic.of(r) for r in rules], total=len(rules))


@router.get("/{rule_id}", summary="One rule", responses=NOT_FOUND)
async def get_rule(rule_id: str, caller: Caller, store: RuleStoreDep) -> RulePublic:
    return RulePublic.of(_find(await store.read(), rule_id))


@router.post(
    "", summary="Add a rule to the rule file", status_code=status.HTTP_201_CREATED,
    responses={**REJECTED, 409: {"model": Problem, "description": "the id is taken, or the "
                                 "rule file on disk is invalid"}},
)
async def create_rule(body: RuleCreate, caller: Writer, store: RuleStoreDep) -> RulePublic:
    rule = body.to_rule(body.id)

    def add(rules: list[Rule]) -> list[Rule]:
        if any(r.id == rule.id for r in rules):
            raise HTTPException(409, f"rule {rule.id!r} exists already; update it with PUT")
        return [*rules, rule]

    await store.change(add)
    return RulePublic.of(rule)


@router.put("/{rule_id}", summary="Replace a rule", responses={**NOT_FOUND, **REJECTED})
async def update_rule(
    rule_id: str, body: RuleSpec, caller: Writer, store: RuleStoreDep
) -> RulePublic:
    rule = body.to_rule(rule_id)
    await store.change(lambda rules: _replace(rules, rule_id, lambda _: rule))
    return RulePublic.of(rule)


@router.post("/{rule_id}/enable", summary="Enable a rule", responses={**NOT_FOUND, **REJECTED})
async def enable_rule(rule_id: str, caller: Writer, store: RuleStoreDep) -> RulePublic:
    return await _set_enabled(store, rule_id, True)


@router.post("/{rule_id}/disable", summary="Disable a rule", responses={**NOT_FOUND, **REJECTED})
async def disable_rule(rule_id: str, caller: Writer, store: RuleStoreDep) -> RulePublic:
    return await _set_enabled(store, rule_id, False)


@router.delete(
    "/{rule_id}", summary="Delete a rule", status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **NOT_FOUND,
        409: {"model": Problem, "description": "other rules count where this one fires "
              "(count_in), or the rule file on disk is invalid"},
        503: REJECTED[503],
    },
)
async def delete_rule(rule_id: str, caller: Writer, store: RuleStoreDep) -> None:
    def remove(rules: list[Rule]) -> list[Rule]:
        gone = _find(rules, rule_id)
        users = referrers(rules, rule_id)
        if users:
            raise HTTPException(409, f"rule {rule_id!r} is counted by rule(s) {', '.join(users)};"
                                " change or delete those first")
        return [r for r in rules if r is not gone]

    await store.change(remove)


@router.post(
    "/validate",
    summary="Check rule-file text, or one rule against the current set, without saving",
    description="A mistake is answered (`valid: false` and where it is); text refused unread "
    "(a YAML alias, as alias bombs need, or far too long) is a 422 problem.",
    responses={422: {"model": RuleProblemBody, "description": "text refused unread"}},
)
async def validate_rule(
    body: RuleValidation, caller: Writer, store: RuleStoreDep
) -> ValidationResult:
    try:
        if body.text is not None:
            rules = await asyncio.to_thread(validate_text, body.text)  # YAML: off the loop
        else:
            assert body.rule is not None
            candidate = body.rule.to_rule(body.rule.id)
            current = await store.read()
            rules = [r for r in current if r.id != candidate.id] + [candidate]
            check_set(rules)
    except RuleTextRefused:
        raise
    except RuleRejected as exc:
        return ValidationResult(valid=False, rule_ids=[], problem=RuleProblem.of(exc))
    return ValidationResult(valid=True, rule_ids=[r.id for r in rules])


@router.post(
    "/backtest",
    summary="What rules would have raised over a past time range of stored readings",
    responses={
        404: {"model": Problem, "description": "an unknown rule id"},
        422: {"model": RuleProblemBody, "description": "invalid range or rule"},
        502: {"model": Problem, "description": "InfluxDB failed"},
        503: {"model": Problem, "description": "no device registry in this process"},
    },
)
async def backtest_rules(
    body: BacktestRequest, caller: Writer, store: RuleStoreDep, influx: InfluxDep,
    setup: RulesPartDep, bounds: BoundsDep, zone: CityZoneDep,
) -> BacktestResult:
    (since, start_ms), (until, end_ms) = body.time_range()
    if end_ms <= start_ms:
        raise RuleRejected(f"{until} must be after {since}", field=until)
    if end_ms - start_ms > bounds.backtest_days * DAY_MS:
        raise RuleRejected(f"range longer than {bounds.backtest_days} days", field=until)
    if start_ms < 0 or end_ms > now_ms() + DAY_MS:
        raise RuleRejected("the range must lie between 1970 and now", field=since)
    current = await store.read()
    rules = [_find(current, i) for i in body.rule_ids]
    if body.rule is not None:
        rules = [r for r in rules if r.id != body.rule.id] + [body.rule.to_rule(body.rule.id)]
    rules = [r.model_copy(update={"enabled": True}) for r in rules]  # tried before enabling
    check_set(rules)
    registry = setup.registry()
    report = await backtest_range(
        influx, registry, rules, start_ms, end_ms,
        timezone=zone, attributes=registry.attributes(),
    )
    return BacktestResult.of(report, MAX_EVENTS)


async def _set_enabled(store: RuleStore, rule_id: str, enabled: bool) -> RulePublic:
    rules = await store.change(
        lambda rules: _replace(rules, rule_id, lambda r: r.model_copy(update={"enabled": enabled})),
    )
    return RulePublic.of(_find(rules, rule_id))


def _replace(rules: list[Rule], rule_id: str, new: Callable[[Rule], Rule]) -> list[Rule]:
    old = _find(rules, rule_id)
    return [new(r) if r is old else r for r in rules]


def _find(rules: list[Rule], rule_id: str) -> Rule:
    found = next((r for r in rules if r.id == rule_id), None)
    if found is None:
        raise HTTPException(404, f"no rule {rule_id!r}")
    return found
