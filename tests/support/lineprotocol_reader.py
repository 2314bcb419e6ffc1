"""A reference reader of InfluxDB 1.x line protocol, for checking what the encoder writes.

InfluxDB's own parser is not one grammar: some of its scanners treat a delimiter as escaped
when a backslash stands right before it (measurement, tags), others let a backslash escape
whatever follows it (line splitting, fields). `parse_line` splits with both and insists
they agree, so a line it accepts means the same to every part of InfluxDB; names are then
unescaped as InfluxDB does (the backslash before `,` ` ` `=` `"` dropped).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParsedLine:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, str]
    ts: str


def parse_line(line: str) -> ParsedLine:
    assert "\n" not in line and "\r" not in line, "a point must be exactly one line"
    assert line[:1] not in ("#", " ", "\t", "\0", ""), f"InfluxDB skips or strips {line[:1]!r}"
    key, fields, ts = _split(line, " ")
    measurement, *tags = _split(key, ",")
    pairs = [_split(tag, "=") for tag in tags]
    field_pairs = [_split(field, "=") for field in _split(fields, ",")]
    assert all(len(p) == 2 for p in pairs + field_pairs), f"not key=value: {line!r}"
    return ParsedLine(
        _unescape(measurement),
        {_unescape(k): _unescape(v) for k, v in pairs},
        {_unescape(k): v for k, v in field_pairs},
        ts,
    )


def _split(text: str, sep: str) -> list[str]:
    by_look_behind = _split_at(text, sep, pair_skip=False)
    by_pairs = _split_at(text, sep, pair_skip=True)
    assert by_look_behind == by_pairs, f"InfluxDB's scanners disagree on {text!r}"
    assert all(by_look_behind), f"empty part in {text!r}"
    return by_look_behind


def _split_at(text: str, sep: str, *, pair_skip: bool) -> list[str]:
    parts, start, i = [], 0, 0
    while i < len(text):
        if pair_skip and text[i] == "\\":
            i += 2
            continue
        if text[i] == sep and (pair_skip or i == 0 or text[i - 1] != "\\"):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    return [*parts, text[start:]]


def _unescape(text: str) -> str:
    for c in ', ="':
        text = text.replace("\\" + c, c)
    return text
