"""The expression grammar: what parses into which tree, and where bad expressions fail."""

from __future__ import annotations

import pytest

from rules.detection import Severity
from rules.errors import ExpressionError
from rules.language import ast
from rules.language.parse import parse

GOOD = [
    ("value > 150", ast.Binary(">", ast.Value(), ast.Num(150.0))),
    ("rate(5m) > 0.2", ast.Binary(">", ast.Window("rate", 300_000), ast.Num(0.2))),
    ("missing for 10m", ast.Stale(600_000)),
    ("not stuck(1h)", ast.Unary("not", ast.Stuck(3_600_000))),
    ("anomaly(combined) > 0.99", ast.Binary(">", ast.Anomaly("combined"), ast.Num(0.99))),
    ("count_in(grid, rule=water-rise) >= 3",
     ast.Binary(">=", ast.CountIn("grid", "water-rise"), ast.Num(3.0))),
    ("value > attr(warning_level)", ast.Binary(">", ast.Value(), ast.Attr("warning_level"))),
    ("value > attr(noise_zone, 2)", ast.Binary(">", ast.Value(), ast.Attr("noise_zone", 2.0))),
    ("value > attr(offset, -1.5)", ast.Binary(">", ast.Value(), ast.Attr("offset", -1.5))),
    ("-value * 2 < 1", ast.Binary("<", ast.Binary("*", ast.Unary("-", ast.Value()), ast.Num(2.0)),
                                  ast.Num(1.0))),
    ("value > 1 or value < 0 and stale(30s)",
     ast.Binary("or", ast.Binary(">", ast.Value(), ast.Num(1.0)),
                ast.Binary("and", ast.Binary("<", ast.Value(), ast.Num(0.0)), ast.Stale(30_000)))),
]


@pytest.mark.parametrize(("text", "tree"), GOOD, ids=[g[0] for g in GOOD])
def test_parses(text, tree):
    assert parse(text) == tree


def test_severity_expression_nests_to_the_right():
    tree = parse("red if value >= 50 else orange if value >= 20 else yellow", "sev")
    assert tree == ast.IfElse(
        ast.Binary(">=", ast.Value(), ast.Num(50.0)), ast.Sev(Severity.RED),
        ast.IfElse(ast.Binary(">=", ast.Value(), ast.Num(20.0)), ast.Sev(Severity.ORANGE),
                   ast.Sev(Severity.YELLOW)))


BAD = [
    ("value >", 8, "unexpected end"),  # column just past the end
    ("value > 1 < 2", 11, "unexpected '<'"),
    ("foo > 1", 1, "unknown name 'foo'"),
    ("rate(5) > 1", 1, "takes one duration"),
    ("value $ 2", 7, "unexpected character '$'"),
    ("value + 1", 1, "expected a condition"),
    ("count_in(grid, rul=x) > 1", 16, "unknown argument 'rul'"),
    ("count_in(street, rule=x) > 1", 10, "expected count_in"),
    ("stale(0s)", 7, "must be positive"),
    ("red if value else blue", 8, "must be a comparison"),
    ("1m > 2", 1, "got a duration"),
    ("hour(1) > 2", 1, "takes no arguments"),
    ("attr(zone, value) > 2", 12, "default of attr() must be a number"),
    ("attr(zone, 1, 2) > 2", 1, "expected attr(name)"),
    ("attr(1) > 2", 6, "expected attr(name)"),
    ("frobnicate(1m) > 2", 1, "unknown function"),
    ("__import__('os')", 12, "unexpected character"),
]


@pytest.mark.parametrize(("text", "column", "reason"), BAD, ids=[b[0] for b in BAD])
def test_rejects_with_column(text, column, reason):
    with pytest.raises(ExpressionError) as err:
        parse(text)
    assert err.value.column == column
    assert reason in err.value.reason
