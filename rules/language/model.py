"""The rule model behind rule files and the API: validated, with parsed expressions.

A rule judges either each series it matches (its subject is the device) or, when its ``when``
uses ``count_in``, areas (its subject is ``grid:<cell>`` or ``district:<name>``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from devices.names import DeviceId, DistrictId, GridId, RuleId
from rules.detection import Category
from rules.language import ast
from rules.language.parse import parse, parse_duration_ms


class Match(BaseModel):
    """Which series a rule judges; each field is one value or a list, all given fields must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_type: tuple[str, ...] | None = None
    metric: tuple[str, ...] | None = None
    district: tuple[DistrictId, ...] | None = None
    grid: tuple[GridId, ...] | None = None
    device_ids: tuple[DeviceId, ...] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class Rule(BaseModel):
    """One rule; ``for`` and ``clear_when`` are optional, ``severity`` a level or an expression."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: RuleId
    name: str = ""
    category: Category
    match: Match = Match()
    when: str
    for_ms: int = Field(0, alias="for", ge=0)
    clear_when: str | None = None
    severity: str = "yellow"
    description: str = ""
    enabled: bool = True

    _when: ast.Node = PrivateAttr()
    _clear: ast.Node | None = PrivateAttr(None)
    _severity: ast.Node = PrivateAttr()

    @field_validator("for_ms", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return parse_duration_ms(v) if isinstance(v, str) else v

    @field_validator("when", "clear_when")
    @classmethod
    def _condition(cls, v: str | None) -> str | None:
        if v is not None:
            parse(v, "bool")
        return v

    @field_validator("severity")
    @classmethod
    def _severity_expr(cls, v: str) -> str:
        parse(v, "sev")
        return v

    @model_validator(mode="after")
    def _spatial(self) -> Rule:
        nodes = list(ast.walk(parse(self.when)))
        counts = [n for n in nodes if isinstance(n, ast.CountIn)]
        others = [parse(self.severity, "sev")] + (
            [parse(self.clear_when)] if self.clear_when is not None else [])
        counts_elsewhere = ast.count_ins(n for root in others for n in ast.walk(root))
        if counts_elsewhere and not counts:
            raise ValueError("count_in() in severity or clear_when needs count_in() in when "
                             "(an area rule)")
        if counts:
            if len({c.scope for c in counts + counts_elsewhere}) > 1:
                raise ValueError("all count_in() of a rule must use the same scope")
            per_series = [n for n in nodes if not isinstance(n, ast.CountIn | ast.Num | ast.Unary
                                                          | ast.Binary | ast.IfElse | ast.Sev)]
            if per_series or self.clear_when or _uses_series(parse(self.severity, "sev")):
                raise ValueError("a count_in() rule may only combine counts and numbers")
        return self

    def model_post_init(self, __context: Any) -> None:
        self._when = parse(self.when)
        self._clear = parse(self.clear_when) if self.clear_when is not None else None
        self._severity = parse(self.severity, "sev")

    @property
    def when_ast(self) -> ast.Node:
        return self._when

    @property
    def clear_ast(self) -> ast.Node | None:
        return self._clear

    @property
    def severity_ast(self) -> ast.Node:
        return self._severity

    @property
    def spatial_scope(self) -> str | None:
        """The ``count_in`` scope when this is an area rule, else None."""
        return next((n.scope for n in ast.walk(self._when) if isinstance(n, ast.CountIn)), None)

    def nodes(self) -> list[ast.Node]:
        """Every node of every expression of the rule."""
        roots = [self._when, self._severity] + ([self._clear] if self._clear else [])
        return [n for root in roots for n in ast.walk(root)]

    @property
    def time_dependent(self) -> bool:
        """Whether the rule's truth can change with time alone (re-evaluated at every tick)."""
        return any(isinstance(n, ast.Stale | ast.OutOfRange) for n in self.nodes())

    @property
    def judges_faults(self) -> bool:
        """Whether the rule is also judged on out-of-range readings (``out_of_range()``)."""
        return any(isinstance(n, ast.OutOfRange) for n in self.nodes())

    @property
    def max_window_ms(self) -> int:
        return max((n.window_ms for n in self.nodes() if isinstance(n, ast.Window)), default=0)


def _uses_series(node: ast.Node) -> bool:
    return any(not isinstance(n, ast.Num | ast.Unary | ast.Binary | ast.IfElse | ast.Sev
                              | ast.CountIn) for n in ast.walk(node))

