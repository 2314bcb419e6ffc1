"""Replace a state-folder file so that a crash leaves the old contents or the new, never a mix.

The new contents go to a temporary file beside the target (mode 0600, from `mkstemp`), are
fsynced, renamed over the target with ``os.replace``, and the folder is fsynced so the rename
itself survives a power cut. The engine checkpoint, the held-detections journal and the
broker's password, ACL and credential files use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def replace_durably(path: Path, write: Callable[[BinaryIO], object]) -> int:
    """Make `path` hold what `write` writes to the file it is given; the bytes written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return size


def remove_durably(path: Path) -> None:
    """Remove `path` if it is there, durably."""
    if path.exists():
        path.unlink()
        fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename or removal in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
