"""Owner-only folders and files, whatever the umask: the one way state is put on disk.

The state folder holds secrets (the token key, the broker's logins), the SQL database and the
spool of readings; none of it is for other users of the machine. Folders made here are 0700
and files 0600. The modes are set explicitly after creation, because a umask only ever takes
bits away (a umask of 0277 would leave a folder its owner cannot write into).
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents owner-only folders; `path`.

    Folders that exist already are left as they are: a state folder may be one the user
    chose, shared on purpose.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            continue
        os.chmod(folder, DIR_MODE)
    return path


def open_private(path: Path, flags: int) -> int:
    """`os.open` of `path` with `flags` (O_CREAT among them), the file made 0600; its fd."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_file(path: Path) -> Path:
    """Create `path` empty if it is missing, and make it 0600 either way; `path`."""
    os.close(open_private(path, os.O_WRONLY | os.O_CREAT))
    return path
