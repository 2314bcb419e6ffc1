"""Errors raised by `rules`.

RuleError
 ├── ExpressionError(column)          an expression does not parse or type-check (a ValueError)
 └── RuleFileError(line, rule_id)     a rule file (or one rule in it) is invalid
"""

from __future__ import annotations


class RuleError(Exception):
    """Root of the errors raised by `rules`."""


class ExpressionError(RuleError, ValueError):
    """An expression is invalid; ``column`` (1-based) points into ``text``."""

    def __init__(self, text: str, column: int, reason: str) -> None:
        self.text, self.column, self.reason = text, column, reason
        super().__init__(f"{reason} at column {column}: {text!r}")


class RuleFileError(RuleError):
    """A rule file is invalid; ``line`` (1-based) is where the offending node starts."""

    def __init__(self, line: int | None, reason: str, rule_id: str | None = None) -> None:
        self.line, self.reason, self.rule_id = line, reason, rule_id
        where = f"line {line}" if line is not None else "rule file"
        who = f" (rule {rule_id})" if rule_id else ""
        super().__init__(f"{where}{who}: {reason}")
