"""InfluxQL building: quoting that no text can break out of, and the exact statements."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.timeseries import influxql
from ingest.timeseries.influxql import quote_ident, quote_literal

_ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "'": "'"}


def scan_quoted(text: str) -> tuple[str, int]:
    """What InfluxQL's scanner reads from the quote `text` starts with: the value and the
    length of the quoted token. Like InfluxDB it refuses a raw newline and unknown escapes."""
    quote, value, i = text[0], [], 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(value), i + 1
        assert c != "\n", "bad string: raw newline"
        if c == "\\":
            assert text[i + 1] in _ESCAPES, f"bad escape \\{text[i + 1]}"
            value.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        value.append(c)
        i += 1
    raise AssertionError("unterminated quote")


@pytest.mark.parametrize("quote", [quote_ident, quote_literal], ids=["ident", "literal"])
@given(text=st.text() | st.text(alphabet=st.sampled_from(list("a\\\"'\n\r ;"))),
       tail=st.sampled_from(["", "' OR 1=1 --", '" ; DROP DATABASE x', "\\"]))
def test_quoted_text_never_closes_its_quote(quote, text: str, tail: str) -> None:
    quoted = quote(text)
    assert scan_quoted(quoted + tail) == (text, len(quoted))


@pytest.mark.parametrize(
    ("text", "ident", "literal"),
    [("aq-1", '"aq-1"', "'aq-1'"),
     ("a\"b'c", '"a\\"b\\\'c"', "'a\\\"b\\'c'"),
     ("a\\b\nc", '"a\\\\b\\nc"', "'a\\\\b\\nc'")],
    ids=["plain", "quotes", "backslash-newline"],
)
def test_quoting(text: str, ident: str, literal: str) -> None:
    assert (quote_ident(text), quote_literal(text)) == (ident, literal)


def test_history_statements() -> None:
    raw = influxql.history("noise", "n-1", "laeq_db", 1000, 2000, every=None,
                           aggregate="mean", limit=10)
    assert raw == ('SELECT "laeq_db" FROM "noise" WHERE device_id = \'n-1\' '
                   "AND time >= 1000ms AND time < 2000ms LIMIT 10")
    means = influxql.history("noise", "n-1", "laeq_db", 1000, 2000, every="1m",
                             aggregate="max", limit=10)
    assert means == ('SELECT max("laeq_db") FROM "noise" WHERE device_id = \'n-1\' '
                     "AND time >= 1000ms AND time < 2000ms GROUP BY time(1m) fill(none) LIMIT 10")


@pytest.mark.parametrize(
    ("every", "aggregate"), [("0m", "mean"), ("1m); DROP", "mean"), (None, "mean(x)")],
    ids=["zero", "injected-every", "unknown-aggregate"],
)
def test_history_refuses_what_it_cannot_spell(every: str | None, aggregate: str) -> None:
    with pytest.raises(ValueError):
        influxql.history("m", "d", "f", 0, 1, every=every, aggregate=aggregate, limit=1)


def test_latest_and_readings_statements() -> None:
    assert influxql.latest("noise", "n-1", "laeq_db") == (
        'SELECT last("laeq_db") FROM "noise" WHERE device_id = \'n-1\'')
    assert influxql.readings("noise", ["a", "b"], ["n-1", "n-2"], 0, 60_000) == (
        'SELECT "a", "b" FROM "noise" WHERE ("device_id" = \'n-1\' OR "device_id" = \'n-2\') '
        'AND time >= 0ms AND time < 60000ms GROUP BY "device_id"')
    assert influxql.readings("noise", ["a"], None, 0, 1) == (
        'SELECT "a" FROM "noise" WHERE time >= 0ms AND time < 1ms GROUP BY "device_id"')


def test_count_statements() -> None:
    assert influxql.count() == "SELECT count(*) FROM /.*/"
    assert influxql.count("noise") == 'SELECT count(*) FROM "noise"'
    assert influxql.count(since_ms=1_700_000_000_000) == (
        "SELECT count(*) FROM /.*/ WHERE time >= 1700000000000ms")


def test_schema_statements() -> None:
    assert influxql.retention_policy("db", "raw", "30d", exists=False, default=True) == (
        'CREATE RETENTION POLICY "raw" ON "db" DURATION 30d REPLICATION 1 DEFAULT')
    assert influxql.retention_policy("db", "downsampled", "INF", exists=True,
                                     default=False) == (
        'ALTER RETENTION POLICY "downsampled" ON "db" DURATION INF')
    assert influxql.downsample_continuous_query("db") == (
        'CREATE CONTINUOUS QUERY "downsample_1m" ON "db" BEGIN SELECT mean(*) INTO '
        '"db"."downsampled".:MEASUREMENT FROM "db"."raw"./.*/ GROUP BY time(1m), * END')
    with pytest.raises(ValueError, match="duration"):
        influxql.retention_policy("db", "raw", "30d; DROP DATABASE db", exists=False,
                                  default=True)
