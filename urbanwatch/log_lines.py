"""Log lines nobody can forge: a device id, topic or payload quoted in a message stays on its line.

`OneLineFormatter` escapes the message of every record with `one_line`, so a newline, a
carriage return, an ANSI escape or a Unicode line separator arriving in a device id or a
rejected payload cannot start a fake record or repaint the terminal. A traceback keeps its
lines, each indented and escaped, so only the first line of a record starts at column 0.

`JsonFormatter` writes one JSON object per record (for journald, Loki and the like): ``ts``
(ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message`` and, with a traceback,
``exc``; JSON escaping keeps each record on its line.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Literal

FORMAT = "%(levelname)s %(name)s: %(message)s"
TIMED_FORMAT = "%(asctime)s " + FORMAT
_INDENT = "    "
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def one_line(text: str) -> str:
    """`text` with every character that is not printable (str.isprintable: controls, line
    and paragraph separators, format characters, surrogates, unassigned code points, spaces
    other than ' ') and the backslash written as a Python escape (``\\n``, ``\\x1b``,
    ``\\u2028``, ``\\\\``), so the text is one line and can be read back exactly."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # the traceback may have been formatted (and cached on the record) by another handler
        first, *rest = super().format(record).splitlines() or [""]
        return "\n".join([first, *(_INDENT + one_line(line) for line in rest)])

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)  # set afresh by every format()
        return super().formatMessage(record)


class UtcFormatter(OneLineFormatter):
    """`OneLineFormatter` whose ``asctime`` is ISO 8601 UTC with milliseconds."""

    converter = staticmethod(time.gmtime)
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def install(level: str = "warning", fmt: Literal["text", "json"] = "text") -> None:
    """Send records of `level` and above to stderr, one line each: timestamped escaped text,
    or JSON (the CLI's setup; `[log] level` and `format`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else UtcFormatter(TIMED_FORMAT))
    logging.basicConfig(level=LEVELS[level], handlers=[handler], force=True)
