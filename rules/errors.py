"""Errors raised by `rules`.

RuleError
 ├── ExpressionError(column)          an expression does not parse or type-check (a ValueError)
 ├── RuleFileError(line, rule_id,     a rule file (or one rule in it) is invalid
 │                 column, field)
 └── RuleRejected(rule_id, field,     a rule, rule set or edit is refused, with where to look
      │           line, column)
      └── RuleTextRefused             rule-file text refused before it is read (an alias, or
                                      too long): refused even where mistakes are only reported
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
    """A rule file is invalid; ``line`` and ``column`` (1-based) are where in the file the
    problem is; `field` names the rule's field, and `expression_column` the column inside that
    field's expression when the expression is the problem; `refused` is true when the text was
    refused unread (a YAML alias, or too long)."""

    def __init__(self, line: int | None, reason: str, rule_id: str | None = None,
                 column: int | None = None, field: str | None = None,
                 expression_column: int | None = None, *, refused: bool = False) -> None:
        self.line, self.reason, self.rule_id, self.column = line, reason, rule_id, column
        self.field, self.expression_column, self.refused = field, expression_column, refused
        where = f"line {line}" if line is not None else "rule file"
        where += f", column {column}" if line is not None and column is not None else ""
        who = f" (rule {rule_id})" if rule_id else ""
        super().__init__(f"{where}{who}: {reason}")


class RuleRejected(RuleError):
    """A rule, rule set or edit of the rule file is refused; positions are 1-based.

    `line` is the line in submitted rule-file text (None for a rule given as data); `column` is
    the column inside the expression of `field` when the problem is an expression. ``str()`` is
    the reason alone.
    """

    def __init__(
        self, reason: str, rule_id: str | None = None, field: str | None = None,
        line: int | None = None, column: int | None = None,
    ) -> None:
        self.reason, self.rule_id, self.field = reason, rule_id, field
        self.line, self.column = line, column
        super().__init__(reason)


class RuleTextRefused(RuleRejected):
    """Rule-file text refused unread as data: it holds a YAML alias (a "billion laughs" bomb
    needs one) or is too long. Validating such text is refused too, rather than answered."""
