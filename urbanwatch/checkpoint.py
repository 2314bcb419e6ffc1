"""The engine checkpoint file: an engine snapshot saved to the state folder, and loaded back.

One ``.npz`` file (uncompressed: writing 1M series must stay well under a checkpoint interval)
holding the snapshot's arrays plus ``checkpoint.format`` (`FORMAT`) and ``checkpoint.saved_ms``.
It is written with `urbanwatch.durable_file.replace_durably`, so a crash leaves the previous
checkpoint or the new one, never a mix. Every array is a zip member with its CRC-32, which the
zip reader checks on load.
Loading never raises for a bad file: a missing, truncated, corrupt or other-format file is
logged and ignored, and the engine starts from what the time-series store and SQL know.
No pickle anywhere (``allow_pickle=False``): a checkpoint is data, never code.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from rules.engine.snapshot import Snapshot
from urbanwatch.durable_file import replace_durably

log = logging.getLogger(__name__)
FORMAT = 1
FILENAME = "engine-checkpoint.npz"
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
