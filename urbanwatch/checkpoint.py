"""The engine checkpoint file: an engine snapshot saved to the state folder, and loaded back.

One ``.npz`` file (uncompressed: writing 1M series must stay well under a checkpoint interval)
holding the snapshot's arrays plus ``checkpoint.format`` (`FORMAT`) and ``checkpoint.saved_ms``.
It is written with `urbanwatch.durable_file.replace_durably`, so a crash leaves the previous
checkpoint or the new one, never a mix. Every array is a zip member with its CRC-32, which the
zip reader checks on load.
Loading never raises for a bad file: a missing, truncated, corrupt or other-format file is
logged and ignored, and the engine starts from what the time-series store and SQL know.
No pickle anywhere (``allow_pickle=False``): a checkpoint is data, never code.

Beside it, the alive mark (`ALIVE`): the platform's time and its recent downtimes, rewritten every
few seconds while it runs, so that a restart knows when the platform stopped listening (a
checkpoint may be a minute older than a crash) and does not count its own downtimes as the
devices' silence.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rules.engine.snapshot import Snapshot
from urbanwatch.durable_file import replace_durably

log = logging.getLogger(__name__)
FORMAT = 1
FILENAME = "engine-checkpoint.npz"
ALIVE = "engine-alive"
_META = ("checkpoint.format", "checkpoint.saved_ms")


def write_checkpoint(path: Path, snapshot: Snapshot, saved_ms: int) -> int:
    """Save ``snapshot`` atomically at ``path``; the bytes written."""
    arrays = dict(snapshot) | {"checkpoint.format": np.array([FORMAT]),
                               "checkpoint.saved_ms": np.array([saved_ms])}
    return replace_durably(path, lambda f: np.savez(f, allow_pickle=False, **arrays))


def load_checkpoint(path: Path) -> tuple[Snapshot, int] | None:
    """(snapshot, saved at ms) from ``path``, or None (logged) when there is none usable."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # reads, and CRC-checks, every one
        found = int(arrays["checkpoint.format"][0])
        if found != FORMAT:
            log.warning("checkpoint %s is format %d, this version reads %d: ignored; the engine "
                        "starts from stored readings and open alerts", path, found, FORMAT)
            return None
        saved_ms = int(arrays["checkpoint.saved_ms"][0])
    except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("checkpoint %s is unreadable (%s): ignored; the engine starts from stored "
                    "readings and open alerts", path, exc)
        return None
    return {k: v for k, v in arrays.items() if k not in _META}, saved_ms


class Alive(NamedTuple):
    """What the alive mark holds: when the platform last ran, and its recent downtimes."""

    ms: int
    downtimes: list[tuple[int, int | None]]


def mark_alive(path: Path, now_ms: int, downtimes: Sequence[tuple[int, int | None]]) -> None:
    """Record at ``path`` that the platform was running at ``now_ms``, with its recent
    ``downtimes``."""
    mark = json.dumps({"ms": now_ms, "downtimes": [list(d) for d in downtimes]})
    replace_durably(path, lambda f: f.write(mark.encode()))


def last_alive(path: Path) -> Alive | None:
    """What `mark_alive` last recorded at ``path``, or None when there is no usable mark."""
    try:
        mark = json.loads(path.read_text())
        return Alive(int(mark["ms"]), [(int(s), None if r is None else int(r))
                                       for s, r in mark["downtimes"]])
    except (OSError, ValueError, TypeError, KeyError):
        return None
