"""Load rule files: YAML text in, validated rules out, or errors naming line, column and reason.

A file is a YAML list of rules or a mapping ``{rules: [...]}``. The YAML is composed into nodes
first so that every error can point at the line of the rule (or of the offending field).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from devices import plain_yaml
from rules.errors import ExpressionError, RuleFileError
from rules.language import ast
from rules.language.model import Rule


def load_rules_file(path: Path) -> list[Rule]:
    """Read ``path`` and load it with `load_rules`."""
    return load_rules(path.read_text(encoding="utf-8"))


def load_rules(text: str) -> list[Rule]:
    """Validate rule-file text into rules.

    Raises:
        RuleFileError: with the 1-based line and column and the reason, for the first problem.
    """
    rules, problems = check_rules(text)
    if problems:
        raise problems[0]
    return rules


def check_rules(text: str) -> tuple[list[Rule], list[RuleFileError]]:
    """The valid rules of rule-file text and every problem found, in file order.

    Each rule is checked on its own (every field of it), then references between rules, so
    one bad rule does not hide the problems of the others.
    """
    try:
        root, data = plain_yaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [RuleFileError(mark.line + 1 if mark else None, f"invalid YAML: {exc}",
                                  column=mark.column + 1 if mark else None,
                                  refused=isinstance(exc, plain_yaml.RefusedYAMLError))]
    try:
        items, nodes = _rule_items(root, data)
    except RuleFileError as exc:
        return [], [exc]
    rules: list[tuple[Rule, yaml.Node]] = []
    problems: list[RuleFileError] = []
    for item, node in zip(items, nodes, strict=True):
        found = _rule(item, node)
        if isinstance(found, Rule):
            rules.append((found, node))
        else:
            problems.extend(found)
    problems.extend(_duplicates(items, nodes))
    problems.extend(_check_references(rules))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return [rule for rule, _ in rules], problems


def _rule_items(root: yaml.Node | None, data: Any) -> tuple[list[Any], list[yaml.Node]]:
    if root is None:
        return [], []
    if isinstance(root, yaml.MappingNode) and isinstance(data, dict) and set(data) == {"rules"}:
        root = root.value[0][1]
        data = data["rules"]
    if not isinstance(root, yaml.SequenceNode) or not isinstance(data, list):
        raise _problem(_at(root), "expected a list of rules or {rules: [...]}", None)
    return data, root.value


def _at(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _problem(position: tuple[int, int], reason: str, rule_id: str | None) -> RuleFileError:
    return RuleFileError(position[0], reason, rule_id, column=position[1])


def _rule(item: Any, node: yaml.Node) -> Rule | list[RuleFileError]:
    if not isinstance(item, dict):
        return [_problem(_at(node), "a rule must be a mapping", None)]
    rule_id = str(item.get("id")) if "id" in item else None
    try:
        return Rule.model_validate(item)
    except ValidationError as exc:
        return [_field_problem(err, node, rule_id) for err in exc.errors()]


def _field_problem(err: Any, node: yaml.Node, rule_id: str | None) -> RuleFileError:
    field = str(err["loc"][0]) if err["loc"] else None
    field_node = _field_node(node, field)
    line, column = _at(field_node or node)
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, ExpressionError):
        if isinstance(field_node, yaml.ScalarNode) and field_node.style is None:  # plain: 1 line
            column += cause.column - 1
        return RuleFileError(line, f"{field}: {cause}", rule_id, column, field, cause.column)
    where = ".".join(str(p) for p in err["loc"])
    reason = f"{where}: {err['msg']}" if where else err["msg"]
    return RuleFileError(line, reason, rule_id, column, field)


def _field_node(node: yaml.Node, field: str | None) -> yaml.Node | None:
    if field is None or not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if key.value == field:
            return value
    return None


def _duplicates(items: list[Any], nodes: list[yaml.Node]) -> list[RuleFileError]:
    """Every rule whose id an earlier one has (valid or not)."""
    seen: set[str] = set()
    problems = []
    for item, node in zip(items, nodes, strict=True):
        rule_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(rule_id, str) and rule_id in seen:
            problems.append(_problem(_at(node), f"duplicate rule id {rule_id!r}", rule_id))
        seen.add(str(rule_id))
    return problems


def _check_references(rules: list[tuple[Rule, yaml.Node]]) -> list[RuleFileError]:
    per_series = {r.id for r, _ in rules if r.spatial_scope is None}
    problems = []
    for rule, node in rules:
        for n in ast.count_ins(rule.nodes()):
            if n.rule_id not in per_series:
                reason = f"count_in() refers to {n.rule_id!r}, which is not a per-series rule here"
                where = _field_node(node, _field_using(rule, n)) or node
                problems.append(_problem(_at(where), reason, rule.id))
    return problems


def _field_using(rule: Rule, ref: ast.CountIn) -> str:
    """The first field of `rule` whose expression holds `ref`, to point an error at its line."""
    fields = {"when": rule.when_ast, "clear_when": rule.clear_ast, "severity": rule.severity_ast}
    return next(f for f, root in fields.items() if root is not None and ref in ast.walk(root))


def load_default_pack() -> list[Rule]:
    """The rule pack shipped with urbanwatch (``rules/packs/default.yaml``)."""
    return load_rules(resources.files("rules").joinpath("packs/default.yaml").read_text("utf-8"))
