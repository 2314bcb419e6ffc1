"""Log lines: whatever a message quotes, a record is one line and reads back exactly."""

from __future__ import annotations

import io
import json
import logging
import re

from hypothesis import given
from hypothesis import strategies as st

from urbanwatch.log_lines import (
    FORMAT,
    TIMED_FORMAT,
    JsonFormatter,
    OneLineFormatter,
    UtcFormatter,
    one_line,
)

_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[ntr\\])")
_NAMED = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
# Text of every kind, and text made of line breaks, escapes and what looks like an escape.
ANY_TEXT = st.text() | st.text(
    alphabet=st.sampled_from(list("aé海\\xnu0 \n\r\t\x00\x1b\x0b\x0c\x1c\x85\u2028\u2029\u202e"))
)


def _read_back(line: str) -> str:
    def unescape(m: re.Match[str]) -> str:
        code = m.group(1)
        return _NAMED.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(unescape, line)


def _formatted(msg: str, *args: object, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    logger = logging.getLogger("test.log_lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        logger.warning(msg, *args, exc_info=exc_info)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@given(ANY_TEXT)
def test_one_line_is_one_printable_line_that_reads_back(text: str) -> None:
    line = one_line(text)
    assert len(line.splitlines()) <= 1 and line.isprintable()
    assert _read_back(line) == text


@given(ANY_TEXT)
def test_a_record_quoting_any_device_id_is_one_line(device_id: str) -> None:
    out = _formatted("rejected message from %s", device_id)
    assert out.endswith("\n") and len(out.splitlines()) == 1
    assert _read_back(out.removeprefix("WARNING test.log_lines: ")[:-1]) == (
        f"rejected message from {device_id}"
    )


def test_a_forged_record_stays_inside_the_real_one() -> None:
    out = _formatted("unknown device %r", "aq-1\nERROR urbanwatch.platform: broker down")
    assert out == ("WARNING test.log_lines: unknown device "
                   "'aq-1\\\\nERROR urbanwatch.platform: broker down'\n")


def test_traceback_lines_are_indented_and_escaped() -> None:
    try:
        raise ValueError("bad id\nERROR forged: \x1b[2J")
    except ValueError as exc:
        out = _formatted("failed", exc=exc)
    first, *rest = out.splitlines()
    assert first == "WARNING test.log_lines: failed" and rest
    assert all(line.startswith("    ") for line in rest)
    assert "\x1b" not in out and "    ERROR forged: \\x1b[2J" in rest


def test_json_records_are_one_object_per_line_with_time_level_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.log_lines.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("unknown device %r", "aq-1\nERROR forged")
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "unknown device 'aq-1\\nERROR forged'"
    assert (first["level"], first["logger"]) == ("warning", "test.log_lines.json")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["ts"])
    assert second["level"] == "error" and "ValueError: bad" in second["exc"]


def test_text_records_start_with_an_iso_utc_timestamp() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.created, record.msecs = 1_717_200_000.25, 250.0
    assert UtcFormatter(TIMED_FORMAT).format(record) == "2024-06-01T00:00:00.250Z INFO x: hello"
