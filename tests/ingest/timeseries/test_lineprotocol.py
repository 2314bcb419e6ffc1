"""Line-protocol encoding: escaping, merging, exact floats, line bookkeeping."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from devices.batch import ReadingBatch
from devices.catalogue import DeviceType, Metric, load_catalogue
from devices.registry import Device, Registry
from ingest.timeseries.lineprotocol import (
    REPLACEMENT,
    LineEncoder,
    escape_key,
    escape_measurement,
)
from tests.support.lineprotocol_reader import parse_line

TS = 1_732_252_800_000


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.build(
        load_catalogue(),
        [
            Device("aq 1,x=y", "air_quality", "old town", 0.0, 0.0, grid="g=1,2"),
            Device("n-1", "noise", "harbour", 0.0, 0.0),  # no grid: tag omitted
        ],
    )


def _batch(registry: Registry, rows: list[tuple[str, str, int, float]]) -> ReadingBatch:
    slots = [registry.slot(device, metric) for device, metric, _, _ in rows]
    return ReadingBatch.from_columns(slots, [r[2] for r in rows], [r[3] for r in rows])


@pytest.mark.parametrize(
    ("text", "key", "measurement"),
    [
        ("plain", "plain", "plain"),
        ("a b", r"a\ b", r"a\ b"),
        ("a,b", r"a\,b", r"a\,b"),
        ("a=b", r"a\=b", "a=b"),
        ("a\nb", r"a\ b", r"a\ b"),
    ],
    ids=["plain", "space", "comma", "equals", "newline"],
)
def test_escaping(text: str, key: str, measurement: str) -> None:
    assert escape_key(text) == key
    assert escape_measurement(text) == measurement


def test_tags_escaped_and_empty_tags_omitted(registry: Registry) -> None:
    lines = LineEncoder(registry).encode(
        _batch(registry, [("aq 1,x=y", "pm25", TS, 35.2), ("n-1", "laeq_db", TS, 55.0)])
    )
    assert lines.body.decode().splitlines() == [
        r"air_quality,device_id=aq\ 1\,x\=y,district=old\ town,grid=g\=1\,2 pm25=35.2 " + str(TS),
        f"noise,device_id=n-1,district=harbour laeq_db=55.0 {TS}",
    ]


def test_same_device_and_time_merge_into_one_line(registry: Registry) -> None:
    rows = [
        ("aq 1,x=y", "pm25", TS, 1.0),
        ("n-1", "laeq_db", TS, 40.0),
        ("aq 1,x=y", "pm10", TS, 2.0),
        ("aq 1,x=y", "pm25", TS + 1000, 3.0),
    ]
    lines = LineEncoder(registry).encode(_batch(registry, rows))
    text = lines.body.decode().splitlines()
    assert len(lines) == 3
    assert text[0].endswith(f" pm25=1.0,pm10=2.0 {TS}")
    assert text[1].endswith(f" pm25=3.0 {TS + 1000}")
    assert text[2].endswith(f" laeq_db=40.0 {TS}")
    assert lines.line_of_reading.tolist() == [0, 2, 0, 1]


def test_duplicate_reading_last_one_wins(registry: Registry) -> None:
    rows = [("aq 1,x=y", "pm25", TS, 1.0), ("aq 1,x=y", "pm10", TS, 5.0),
            ("aq 1,x=y", "pm25", TS, 9.0)]
    lines = LineEncoder(registry).encode(_batch(registry, rows))
    assert lines.body.decode().endswith(f" pm25=9.0,pm10=5.0 {TS}\n")
    assert len(lines) == 1 and lines.line_of_reading.tolist() == [0, 0, 0]


def test_chunks_and_readings_follow_lines(registry: Registry) -> None:
    rows = [("n-1", "laeq_db", TS + i, 40.0 + i) for i in range(5)]
    lines = LineEncoder(registry).encode(_batch(registry, rows))
    assert b"".join(lines.chunk(i, i + 1) for i in range(len(lines))) == lines.body
    assert lines.chunk(1, 3) == b"".join(lines.body.splitlines(keepends=True)[1:3])
    assert lines.readings(1, 3).tolist() == [1, 2]


def test_empty_batch(registry: Registry) -> None:
    lines = LineEncoder(registry).encode(ReadingBatch.empty())
    assert len(lines) == 0 and lines.body == b""


def test_slot_unknown_to_the_snapshot_is_refused(registry: Registry) -> None:
    encoder = LineEncoder(registry)
    with pytest.raises(ValueError, match="slots"):
        encoder.encode(ReadingBatch.from_columns([registry.n_series], [TS], [1.0]))


def test_covers_notices_new_series() -> None:
    registry = Registry.build(load_catalogue(), [Device("n-1", "noise", "d", 0.0, 0.0)])
    encoder = LineEncoder(registry)
    assert encoder.covers(registry)
    registry.put(Device("n-2", "noise", "d", 0.0, 0.0))
    assert not encoder.covers(registry)


_FIELD = re.compile(r"(?:^|,)[a-z0-9_]+=([^, ]+)")


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_values_round_trip_exactly(values: list[float]) -> None:
    registry = Registry.build(load_catalogue(), [Device("n-1", "noise", "d", 0.0, 0.0)])
    slot = registry.slot("n-1", "laeq_db")
    batch = ReadingBatch.from_columns([slot] * len(values), range(len(values)), values)
    text = LineEncoder(registry).encode(batch).body.decode().splitlines()
    parsed = [float(_FIELD.search(line.split(" ")[1]).group(1)) for line in text]
    assert parsed == values
    signs = [math.copysign(1, v) for v in values]
    assert [math.copysign(1, p) for p in parsed] == signs  # -0.0 stays -0.0


def test_large_batch_matches_a_plain_loop(registry: Registry) -> None:
    rng = np.random.default_rng(7)
    n = 2000
    batch = ReadingBatch.from_columns(
        rng.integers(0, registry.n_series, n), TS + rng.integers(0, 5, n) * 1000,
        rng.normal(0, 1e6, n),
    )
    lines = LineEncoder(registry).encode(batch)
    expected: dict[tuple[str, int], dict[str, float]] = {}
    for slot, ts_ms, value in zip(batch.slot, batch.ts_ms, batch.value, strict=True):
        series = registry.series(int(slot))
        expected.setdefault((series.device_id, int(ts_ms)), {})[series.metric] = float(value)
    assert len(lines) == len(expected)
    got: dict[tuple[str, int], dict[str, float]] = {}
    for line in lines.body.decode().splitlines():
        head, fields, ts = re.split(r"(?<!\\) ", line)
        device = "aq 1,x=y" if head.startswith("air_quality") else "n-1"
        got[(device, int(ts))] = {k: float(v) for k, v in (f.split("=") for f in fields.split(","))}
    assert got == expected


# -- escaping arbitrary text: one line, read back as written (or as documented) --------

_TO_SPACE = "\r\n\t\0"


def _carried(written: str, read: str, *, measurement: bool = False) -> bool:
    """`read` is `written` except where line protocol cannot carry a character: line
    breaks, tabs, NULs become spaces; backslashes (and a measurement's leading #) may become
    REPLACEMENT."""
    return len(read) == len(written) and all(
        r == w or (w in _TO_SPACE and r == " ")
        or (r == REPLACEMENT and (w == "\\" or (measurement and i == 0 and w == "#")))
        for i, (w, r) in enumerate(zip(written, read, strict=True))
    )


def _plain(text: str) -> bool:
    return not any(c in text for c in _TO_SPACE + "\\") and not text.startswith("#")


names = st.text(min_size=1, max_size=12)
nasty = st.text(alphabet=st.sampled_from(list('ab\\ ,="\'#\n\r\t\0é')), min_size=1, max_size=12)


@given(measurement=names | nasty, device_id=names | nasty, district=names | nasty,
       grid=names | nasty, metrics=st.lists(names | nasty, min_size=2, max_size=2, unique=True))
@example(measurement="#m\\", device_id="a\\", district="\tb\n", grid='\\,\\"=',
         metrics=["\0x\\", "#y\\ "])
def test_any_names_give_one_line_that_reads_back(
    measurement: str, device_id: str, district: str, grid: str, metrics: list[str]
) -> None:
    assume(len({escape_key(m) for m in metrics}) == 2)  # two metrics that stay two fields
    kind = DeviceType(measurement, "", 60.0, {m: Metric(m, "", 0.0, 1.0) for m in metrics})
    registry = Registry.build({measurement: kind},
                              [Device(device_id, measurement, district, 0.0, 0.0, grid=grid)])
    slots = [registry.slot(device_id, m) for m in metrics]
    body = LineEncoder(registry).encode(ReadingBatch.from_columns(slots, [TS, TS], [1.5, -2.0]))
    text = body.body.decode()
    assert text.count("\n") == 1 and text.endswith("\n") and "\r" not in text

    line = parse_line(text.removesuffix("\n"))
    assert _carried(measurement, line.measurement, measurement=True)
    assert line.tags.keys() == {"device_id", "district", "grid"}
    for key, written in (("device_id", device_id), ("district", district), ("grid", grid)):
        assert _carried(written, line.tags[key])
    assert list(line.fields.values()) == ["1.5", "-2.0"] and line.ts == str(TS)
    for written, read in zip(metrics, line.fields, strict=True):
        assert _carried(written, read)


@given(text=names.filter(_plain))
def test_plain_names_read_back_exactly(text: str) -> None:
    line = parse_line(f"{escape_measurement(text)},t={escape_key(text)} {escape_key(text)}=1 0")
    assert (line.measurement, line.tags, line.fields) == (text, {"t": text}, {text: "1"})


@pytest.mark.parametrize(
    ("text", "key", "measurement"),
    [
        ("a\\", "a" + REPLACEMENT, "a" + REPLACEMENT),
        ("a\\b", "a\\b", "a\\b"),
        ("a\\,b", "a" + REPLACEMENT + r"\,b", "a" + REPLACEMENT + r"\,b"),
        ('a\\"b', "a" + REPLACEMENT + '"b', "a" + REPLACEMENT + '"b'),
        ("#a", "#a", REPLACEMENT + "a"),
        ("\ta\0", r"\ a\ ", r"\ a\ "),
    ],
    ids=["trailing-backslash", "backslash", "backslash-comma", "backslash-quote", "hash",
         "tab-nul"],
)
def test_what_line_protocol_cannot_carry(text: str, key: str, measurement: str) -> None:
    assert escape_key(text) == key
    assert escape_measurement(text) == measurement
