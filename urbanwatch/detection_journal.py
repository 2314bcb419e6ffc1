"""The held-detections journal: the alert store's backlog mirrored to the state folder.

Ingest has acknowledged the readings behind a held detection, and the engine (and its next
checkpoint) has moved on, so after a crash nothing would detect it again: while detections are
held, `DetectionBacklog` keeps this file equal to what it holds, and the platform loads it at
start-up and stores those detections first. One JSON line per held batch,
``{"now_ms": ..., "detections": [{every Detection field}, ...]}``, after a header line
``{"format": 1}``. Saved whole with `urbanwatch.durable_file.replace_durably` (mode 0600, a
crash leaves the old file or the new); an empty backlog removes the file. A file that cannot
be read is logged and moved aside (``*.corrupt-<ms>``) for someone to look at: it never stops
the platform and is never silently dropped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from devices.clock import now_ms
from rules.detection import Detection
from urbanwatch.durable_file import remove_durably, replace_durably

log = logging.getLogger(__name__)
FILENAME = "held-detections.jsonl"
FORMAT = 1
Held = tuple[list[Detection], int]  # (detections, now_ms of their batch)
_DETECTIONS = TypeAdapter(list[Detection])


class DetectionJournal:
    """Saves and loads the held batches at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, held: Sequence[Held]) -> None:
        """Make the file hold exactly `held` (removed when it is empty); durable on return."""
        if not held:
            remove_durably(self.path)
            return
        lines = [json.dumps({"format": FORMAT})]
        lines += [json.dumps({"now_ms": at_ms, "detections": [asdict(d) for d in found]})
                  for found, at_ms in held]
        text = ("\n".join(lines) + "\n").encode()
        replace_durably(self.path, lambda f: f.write(text))

    def load(self) -> list[Held]:
        """The batches saved at `path`, oldest first; [] when there is none or it is unreadable
        (then logged and moved aside)."""
        if not self.path.exists():
            return []
        try:
            return _parse(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{now_ms()}")
            os.replace(self.path, aside)
            log.error("held-detections journal %s is unreadable (%s): moved to %s; the "
                      "detections in it are NOT retried — read it to see what was lost",
                      self.path, exc, aside)
            return []


def _parse(text: str) -> list[Held]:
    """Raises ValueError (or KeyError/TypeError) for anything but a whole, valid journal."""
    if not text.endswith("\n"):
        raise ValueError("the last line is cut short")
    header, *rows = [json.loads(line) for line in text.splitlines()]
    if header != {"format": FORMAT}:
        raise ValueError(f"header {header!r}, expected {{'format': {FORMAT}}}")
    held: list[Held] = []
    for row in rows:
        try:
            held.append((_DETECTIONS.validate_python(row["detections"]), int(row["now_ms"])))
        except ValidationError as exc:
            raise ValueError(f"a detection does not fit: {exc.errors()[0]['msg']}") from None
    return held

