"""Load rule files: YAML text in, validated rules out, or an error naming the line and reason.

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
        RuleFileError: with the 1-based line and the reason, for the first problem found.
    """
    try:
        root, data = plain_yaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleFileError(mark.line + 1 if mark else None, f"invalid YAML: {exc}") from None
    items, nodes = _rule_items(root, data)
    rules = [_rule(item, node) for item, node in zip(items, nodes, strict=True)]
    _check_references(rules, nodes)
    return rules


def _rule_items(root: yaml.Node | None, data: Any) -> tuple[list[Any], list[yaml.Node]]:
    if root is None:
        return [], []
    if isinstance(root, yaml.MappingNode) and isinstance(data, dict) and set(data) == {"rules"}:
        root = root.value[0][1]
        data = data["rules"]
    if not isinstance(root, yaml.SequenceNode) or not isinstance(data, list):
        raise RuleFileError(root.start_mark.line + 1, "expected a list of rules or {rules: [...]}")
    return data, root.value


def _rule(item: Any, node: yaml.Node) -> Rule:
    line = node.start_mark.line + 1
    if not isinstance(item, dict):
        raise RuleFileError(line, "a rule must be a mapping")
    rule_id = str(item.get("id")) if "id" in item else None
    try:
        return Rule.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else None
        field_line = _field_line(node, field) or line
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ExpressionError):
            reason = f"{field}: {cause}"
        else:
            where = ".".join(str(p) for p in err["loc"])
            reason = f"{where}: {err['msg']}" if where else err["msg"]
        raise RuleFileError(field_line, reason, rule_id) from None


def _field_line(node: yaml.Node, field: str | None) -> int | None:
    if field is None or not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if key.value == field:
            return value.start_mark.line + 1
    return None


def _check_references(rules: list[Rule], nodes: list[yaml.Node]) -> None:
    per_series = {r.id for r in rules if r.spatial_scope is None}
    seen: set[str] = set()
    for rule, node in zip(rules, nodes, strict=True):
        line = node.start_mark.line + 1
        if rule.id in seen:
            raise RuleFileError(line, f"duplicate rule id {rule.id!r}", rule.id)
        seen.add(rule.id)
        for n in ast.count_ins(rule.nodes()):
            if n.rule_id not in per_series:
                reason = f"count_in() refers to {n.rule_id!r}, which is not a per-series rule here"
                raise RuleFileError(_field_line(node, _field_using(rule, n)) or line, reason,
                                    rule.id)


def _field_using(rule: Rule, ref: ast.CountIn) -> str:
    """The first field of `rule` whose expression holds `ref`, to point an error at its line."""
    fields = {"when": rule.when_ast, "clear_when": rule.clear_ast, "severity": rule.severity_ast}
    return next(f for f, root in fields.items() if root is not None and ref in ast.walk(root))


def load_default_pack() -> list[Rule]:
    """The rule pack shipped with urbanwatch (``rules/packs/default.yaml``)."""
    return load_rules(resources.files("rules").joinpath("packs/default.yaml").read_text("utf-8"))
