"""The id grammar: what it takes, what it refuses and why, and that shipped data passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from alerts.routing import load_routing
from devices.errors import InvalidNameError
from devices.names import MAX_LENGTH, DeviceId, Kind, check
from rules.language.loader import load_default_pack
from simulators.city import build_city

GOOD = ["aq-0001", "g-3-11", "haidian", "environment_bureau", "pm2.5-heavy", "A", "9"]
BAD = [
    ("empty", Kind.DEVICE, "", "it is empty"),
    ("space", Kind.DEVICE, "aq 1", "' ' at position 2 is not allowed"),
    ("newline", Kind.TEAM, "gas\nuser x", "'\\n' at position 3 is not allowed"),
    ("carriage-return", Kind.RULE, "r\r", "'\\r' at position 1"),
    ("nul", Kind.DISTRICT, "west\x00", "'\\x00' at position 4"),
    ("escape", Kind.DEVICE, "aq\x1b[2J", "'\\x1b' at position 2"),
    ("line-separator", Kind.GRID, "g\u20281", "'\\u2028' at position 1"),
    ("plus", Kind.DISTRICT, "+", "'+' at position 0"),
    ("hash", Kind.TEAM, "team#", "'#' at position 4"),
    ("slash", Kind.DEVICE, "a/b", "'/' at position 1"),
    ("colon", Kind.DEVICE, "aq:1", "':' at position 2"),
    ("non-ascii", Kind.DISTRICT, "海淀区", "'海' at position 0"),
    ("leading-dot", Kind.RULE, ".hidden", "must start with a letter or a digit"),
    ("leading-dash", Kind.DEPARTMENT, "-x", "must start with a letter or a digit"),
    ("too-long", Kind.DEVICE, "a" * 65, "longer than 64 characters"),
    ("rule-too-long", Kind.RULE, "r" * 129, "longer than 128 characters"),
]  # fmt: skip


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("value", GOOD)
def test_good_ids_pass_every_kind(kind: Kind, value: str) -> None:
    assert check(kind, value) == value


@pytest.mark.parametrize(("kind", "value", "reason"), [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])  # fmt: skip
def test_bad_ids_are_refused_with_the_reason(kind: Kind, value: str, reason: str) -> None:
    with pytest.raises(InvalidNameError) as refused:
        check(kind, value)
    assert str(refused.value).startswith(f"bad {kind.value} id {value!r}: ")
    assert reason in refused.value.reason
    assert "\n" not in str(refused.value)  # the message itself is one line


def test_the_longest_id_of_each_kind_passes() -> None:
    for kind, length in MAX_LENGTH.items():
        assert check(kind, "x" * length)


@given(st.text(), st.sampled_from(list(Kind)))
def test_anything_accepted_is_one_safe_token(value: str, kind: Kind) -> None:
    try:
        check(kind, value)
    except InvalidNameError as exc:
        assert exc.reason
        return
    assert 0 < len(value) <= MAX_LENGTH[kind]
    assert value.isascii() and value.isprintable()
    assert not any(c.isspace() or c in "+#/:\\\"'," for c in value)


def test_the_annotated_type_reports_a_field_error() -> None:
    with pytest.raises(ValidationError, match="bad device id 'a b'"):
        TypeAdapter(DeviceId).validate_python("a b")


def test_shipped_data_passes() -> None:
    city = build_city(500, seed=1)
    for area in (*city.districts, *city.cells):
        check(Kind.DISTRICT if area.kind == "district" else Kind.GRID, area.id)
    for device in city.devices:
        check(Kind.DEVICE, device.id)
        check(Kind.DEPARTMENT, device.department)
    routing = load_routing()  # validated by the annotated types
    assert routing.handlers and load_default_pack()
