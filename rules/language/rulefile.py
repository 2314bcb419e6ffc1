"""The rule file the platform runs, as the API edits it.

Every change is read-modify-write under a per-file lock: the whole new rule set is serialized,
loaded back with `rules.language.loader.load_rules` (so it passes exactly the checks the engine's
reload applies), and only then written to a temporary file beside the target and moved over it with
`os.replace`. A rejected change leaves the file untouched, so a bad rule never reaches the engine.
What is written is the old text with only the changed fields of changed rules rewritten and deleted
rules cut out (`rules.language.ruletext`), so the comments stay; when that cannot be done, the whole
set is written afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from devices.yaml_text import dump_yaml, file_lock, write_atomic
from rules.errors import ExpressionError, RuleFileError, RuleRejected, RuleTextRefused
from rules.language import ast
from rules.language.loader import load_default_pack, load_rules, load_rules_file
from rules.language.model import Rule
from rules.language.parse import UNIT_MS
from rules.language.ruletext import edit_text

HEADER = "# urbanwatch rules (edited through the API; edits by hand are picked up as well)\n"
TOO_DEEP = "expression or YAML nested too deeply"


def format_duration(ms: int) -> str:
    """Milliseconds as the rule language writes them, in the largest exact unit (``600000`` →
    ``10m``)."""
    for unit, size in sorted(UNIT_MS.items(), key=lambda u: -u[1]):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError("ms divides every duration")


def build_rule(data: dict[str, Any]) -> Rule:
    """Validate one rule given as plain data (the API's JSON body)."""
    try:
        return Rule.model_validate(data)
    except ValidationError as exc:
        raise _rejection(exc, str(data.get("id") or "") or None) from None
    except RecursionError:
        raise RuleRejected(TOO_DEEP, str(data.get("id") or "") or None) from None


def validate_text(text: str) -> list[Rule]:
    """Validate rule-file text; a problem names its line (and column, for an expression)."""
    try:
        return load_rules(text)
    except RecursionError:
        raise RuleRejected(TOO_DEEP) from None
    except RuleFileError as exc:
        raise (RuleTextRefused if exc.refused else RuleRejected)(
            exc.reason, exc.rule_id, exc.field, exc.line, exc.expression_column
        ) from None


def plain(rule: Rule) -> dict[str, Any]:
    """A rule as rule-file data: defaults left out, durations written like ``10m``."""
    item = rule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if "for" in item:
        item["for"] = format_duration(item["for"])
    return item


def render(rules: list[Rule]) -> str:
    """The YAML text of a rule set, as `load_rules` reads it back."""
    return HEADER + dump_yaml({"rules": [plain(r) for r in rules]})


def check_set(rules: list[Rule]) -> str:
    """The text of `rules` once it has passed the loader's checks (ids, count_in references)."""
    text = render(rules)
    try:
        loaded = load_rules(text)
    except RuleFileError as exc:
        raise RuleRejected(exc.reason, exc.rule_id) from None
    if not _same(loaded, rules):
        raise RuleRejected("a rule does not survive being written as YAML (control characters?)")
    return text


def referrers(rules: list[Rule], rule_id: str) -> list[str]:
    """The ids of the rules that count the firing series of `rule_id` (``count_in``)."""
    return [r.id for r in rules if any(n.rule_id == rule_id for n in ast.count_ins(r.nodes()))]


def _loads_as(text: str, rules: list[Rule]) -> bool:
    try:
        return _same(load_rules(text), rules)
    except RuleFileError:
        return False


def _same(a: list[Rule], b: list[Rule]) -> bool:
    return [r.model_dump() for r in a] == [r.model_dump() for r in b]


class RuleFile:
    """One rule file on disk; `path` None means the shipped pack, which is read-only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def read(self) -> list[Rule]:
        return load_default_pack() if self.path is None else load_rules_file(self.path)

    def change(
        self, edit: Callable[[list[Rule]], list[Rule]], fresh: Collection[str] = ()
    ) -> list[Rule]:
        """Apply `edit` to the current rules and write the result if it is valid; a changed rule
        keeps its comments, unless its id is in `fresh` (then it is written anew).

        Raises:
            RuleRejected: the new set is invalid (nothing written), or `edit` refused.
            RuleFileError: the file on disk is invalid now.
        """
        if self.path is None:
            raise PermissionError("no rule file: the shipped pack is read-only")
        with file_lock(self.path):
            text = self.path.read_text(encoding="utf-8")
            before = load_rules(text)
            rules = edit(before)
            new_text = check_set(rules)
            edited = edit_text(text, before, rules, {r.id: plain(r) for r in rules}, fresh)
            write_atomic(self.path, edited if edited and _loads_as(edited, rules) else new_text)
            return rules


def shipped_pack() -> str:
    """The text of the rule pack shipped with urbanwatch, comments and sources included."""
    return resources.files("rules").joinpath("packs/default.yaml").read_text("utf-8")


def seed_rule_file(path: Path, pack: str | None = None) -> None:
    """Create `path` from `pack` (by default the shipped one) if it is missing."""
    if not path.exists():
        write_atomic(path, shipped_pack() if pack is None else pack)


def _rejection(exc: ValidationError, rule_id: str | None) -> RuleRejected:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else None
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, ExpressionError):
        return RuleRejected(f"{field}: {cause}", rule_id, field, None, cause.column)
    where = ".".join(str(p) for p in err["loc"])
    return RuleRejected(f"{where}: {err['msg']}" if where else err["msg"], rule_id, field)
