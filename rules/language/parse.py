"""Rule expressions: a restricted grammar parsed by lark into the tree of `rules.language.ast`.

Grammar (lowest precedence first)::

    expr     := or ["if" or "else" expr]     # e.g. ``red if value >= 50 else orange``
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | cmp
    cmp      := sum [(< | <= | > | >= | == | !=) sum]     # comparisons do not chain
    sum      := product ((+ | -) product)*
    product  := unary ((* | /) unary)*
    unary    := "-" unary | atom
    atom     := number | value | info|blue|yellow|orange|red | call | "(" expr ")"
              | "missing for" duration                # same as stale(duration)

Calls: ``rate|delta|mean|min|max|zscore(window)``, ``stale(duration)``, ``stuck(window)``,
``out_of_range(hold)``,
``anomaly(detector)``, ``count_in(grid|district|neighbours, rule=<rule id>)``, ``hour()``,
``attr(name)`` or ``attr(name, default)`` (the default where a device lacks the attribute).
Durations are ``<number><unit>`` with unit ms, s, m, h or d. Nothing is ever evaluated by Python:
the tree is all the compiler and the reference see.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from rules.detection import Severity
from rules.errors import ExpressionError
from rules.language import ast

GRAMMAR = r"""
?start: expr
?expr: or_expr
     | or_expr IF or_expr "else" expr       -> ifelse
?or_expr: and_expr
        | or_expr OR and_expr               -> binary
?and_expr: not_expr
         | and_expr AND not_expr            -> binary
?not_expr: cmp
         | NOT not_expr                     -> unary
?cmp: sum
    | sum CMP_OP sum                        -> binary
?sum: product
    | sum ADD_OP product                    -> binary
?product: unary
        | product MUL_OP unary              -> binary
?unary: atom
      | MINUS unary                         -> unary
?atom: NUMBER                               -> number
     | DURATION                             -> duration
     | NAME                                 -> name
     | NAME "(" [arg ("," arg)*] ")"        -> call
     | MISSING "for" DURATION               -> missing
     | "(" expr ")"
?arg: expr
    | NAME "=" RULE_REF                     -> kwarg

IF: "if"
OR: "or"
AND: "and"
NOT: "not"
MISSING: "missing"
MINUS: "-"
CMP_OP: "<=" | ">=" | "==" | "!=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/"
DURATION.2: /\d+(\.\d+)?(ms|s|m|h|d)(?![A-Za-z0-9_])/
NUMBER: /\d+(\.\d+)?([eE][+-]?\d+)?/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
RULE_REF: /[A-Za-z0-9_][A-Za-z0-9_.\-]*/
%ignore /[ \t]+/
"""

UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ARITH, _CMP, _LOGIC = ("+", "-", "*", "/"), ("<", "<=", ">", ">=", "==", "!="), ("and", "or")


class Typed(NamedTuple):
    node: ast.Node | None  # None for a bare name or a duration, legal only as call arguments
    type: str  # "num" | "bool" | "sev" | "name" | "duration"
    column: int
    text: str = ""
    ms: int = 0


class _Fail(Exception):
    def __init__(self, column: int, reason: str) -> None:
        self.column, self.reason = column, reason


def parse_duration_ms(text: str) -> int:
    """``"10m"`` -> 600000. Raises ValueError for anything else."""
    for unit in ("ms", "s", "m", "h", "d"):
        number = text[: -len(unit)]
        if text.endswith(unit) and number.replace(".", "", 1).isdigit():
            return round(float(number) * UNIT_MS[unit])
    raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 10m, 1h)")


def _col(tok: Token) -> int:
    return tok.column or 1


@v_args(inline=True)
class _Build(Transformer):
    def number(self, tok: Token) -> Typed:
        return Typed(ast.Num(float(tok)), "num", _col(tok))

    def duration(self, tok: Token) -> Typed:
        return Typed(None, "duration", _col(tok), str(tok), parse_duration_ms(str(tok)))

    def name(self, tok: Token) -> Typed:
        text = str(tok)
        if text == "value":
            return Typed(ast.Value(), "num", _col(tok))
        if text.upper() in Severity.__members__:
            return Typed(ast.Sev(Severity.parse(text)), "sev", _col(tok))
        return Typed(None, "name", _col(tok), text)

    def missing(self, kw: Token, dur: Token) -> Typed:
        ms = parse_duration_ms(str(dur))
        return Typed(ast.Stale(_positive(ms, _col(dur))), "bool", _col(kw))

    def kwarg(self, key: Token, ref: Token) -> tuple[str, str, int]:
        return (str(key), str(ref), _col(key))

    def unary(self, op: Token, operand: Typed) -> Typed:
        if str(op) == "not":
            _expect(operand, "bool", "'not' needs a condition")
            return Typed(ast.Unary("not", _node(operand)), "bool", _col(op))
        _expect(operand, "num", "'-' needs a number")
        return Typed(ast.Unary("-", _node(operand)), "num", _col(op))

    def binary(self, left: Typed, op: Token, right: Typed) -> Typed:
        sym = str(op)
        want, result = ("bool", "bool") if sym in _LOGIC else ("num", "num")
        if sym in _CMP:
            result = "bool"
        _expect(left, want, f"'{sym}' needs {_WORD[want]} on its left")
        _expect(right, want, f"'{sym}' needs {_WORD[want]} on its right")
        return Typed(ast.Binary(sym, _node(left), _node(right)), result, left.column)

    def ifelse(self, then: Typed, _kw: Token, cond: Typed, other: Typed) -> Typed:
        _expect(cond, "bool", "the condition after 'if' must be a comparison")
        _expect(then, other.type, "both branches of 'if ... else' must have the same type")
        if then.type not in ("num", "sev"):
            raise _Fail(then.column, "'if ... else' chooses between numbers or severities")
        node = ast.IfElse(_node(cond), _node(then), _node(other))
        return Typed(node, then.type, then.column)

    def call(self, fn: Token, *args: Typed | tuple[str, str, int] | None) -> Typed:
        return _call(str(fn), _col(fn), [a for a in args if a is not None])


_WORD = {"num": "a number", "bool": "a condition", "sev": "a severity"}


def _expect(t: Typed, want: str, reason: str) -> None:
    if t.type != want:
        detail = {"name": f"unknown name {t.text!r}", "duration": "a duration"}.get(t.type, "")
        raise _Fail(t.column, reason + (f" (got {detail})" if detail else ""))


def _node(t: Typed) -> ast.Node:
    """The node of an operand `_expect` has accepted as a number, condition or severity."""
    assert t.node is not None, t  # only names and durations have none
    return t.node


def _positive(ms: int, column: int) -> int:
    if ms <= 0:
        raise _Fail(column, "a duration must be positive")
    return ms


_DURATION_TESTS: dict[str, type[ast.Stale | ast.Stuck | ast.OutOfRange]] = {
    "stale": ast.Stale, "stuck": ast.Stuck, "out_of_range": ast.OutOfRange}


def _call(fn: str, column: int, args: list) -> Typed:
    def only(kind: str) -> Typed:
        if len(args) != 1 or not isinstance(args[0], Typed) or args[0].type != kind:
            raise _Fail(column, f"{fn}() takes one {kind} argument")
        return args[0]

    if fn in ast.WINDOW_FUNCTIONS:
        arg = only("duration")
        return Typed(ast.Window(fn, _positive(arg.ms, arg.column)), "num", column)
    if fn in _DURATION_TESTS:
        arg = only("duration")
        return Typed(_DURATION_TESTS[fn](_positive(arg.ms, arg.column)), "bool", column)
    if fn == "anomaly":
        return Typed(ast.Anomaly(only("name").text), "num", column)
    if fn == "attr":
        return Typed(_attr(column, args), "num", column)
    if fn == "hour":
        if args:
            raise _Fail(column, "hour() takes no arguments")
        return Typed(ast.Hour(), "num", column)
    if fn == "count_in":
        return Typed(_count_in(column, args), "num", column)
    raise _Fail(column, f"unknown function {fn!r}")


def _attr(column: int, args: list) -> ast.Attr:
    usage = "attr(name) or attr(name, default number)"
    if not 1 <= len(args) <= 2 or not all(isinstance(a, Typed) for a in args):
        raise _Fail(column, f"expected {usage}")
    if args[0].type != "name":
        raise _Fail(args[0].column, f"expected {usage}")
    if len(args) == 1:
        return ast.Attr(args[0].text)
    match args[1].node:
        case ast.Num(value):
            return ast.Attr(args[0].text, value)
        case ast.Unary("-", ast.Num(value)):
            return ast.Attr(args[0].text, -value)
    raise _Fail(args[1].column, f"the default of attr() must be a number; expected {usage}")


def _count_in(column: int, args: list) -> ast.CountIn:
    usage = "count_in(grid|district|neighbours, rule=<rule id>)"
    if len(args) != 2 or not isinstance(args[0], Typed) or not isinstance(args[1], tuple):
        raise _Fail(column, f"expected {usage}")
    scope, (key, ref, key_column) = args[0], args[1]
    if scope.type != "name" or scope.text not in ast.SCOPES:
        raise _Fail(scope.column, f"expected {usage}")
    if key != "rule":
        raise _Fail(key_column, f"unknown argument {key!r}; expected {usage}")
    return ast.CountIn(scope.text, ref)


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


def parse(text: str, kind: str = "bool") -> ast.Node:
    """Parse ``text`` into a typed tree whose result type is ``kind`` ("bool", "num" or "sev").

    Raises:
        ExpressionError: with the 1-based column of the problem.
    """
    try:
        typed = _Build().transform(_parser().parse(text))
    except UnexpectedEOF:
        raise ExpressionError(text, len(text) + 1, "unexpected end of expression") from None
    except UnexpectedCharacters as exc:
        found = exc.char
        raise ExpressionError(text, exc.column, f"unexpected character {found!r}") from None
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        if token is None or token.type == "$END":
            raise ExpressionError(text, len(text) + 1, "unexpected end of expression") from None
        raise ExpressionError(text, exc.column, f"unexpected {str(token)!r}") from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, _Fail):
            raise ExpressionError(text, exc.orig_exc.column, exc.orig_exc.reason) from None
        if isinstance(exc.orig_exc, ValueError):
            raise ExpressionError(text, 1, str(exc.orig_exc)) from None
        raise
    if typed.type != kind:
        got = _WORD.get(typed.type, typed.type)
        raise ExpressionError(text, typed.column, f"expected {_WORD[kind]}, got {got}")
    assert typed.node is not None
    return typed.node
