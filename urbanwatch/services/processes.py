"""Child-process mechanics of the managed services: detached spawn, liveness, parent death."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def spawn_detached(argv: list[str], log_fd: int) -> int:
    """Start `argv` in its own session with no Popen object, which would warn when
    collected while the server it started (on purpose) still runs."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log_fd, 1),
        (os.POSIX_SPAWN_DUP2, log_fd, 2),
    ]
    return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True)


def alive(pid: int) -> bool:
    """False once every thread has exited (a zombie waiting to be reaped counts as dead).

    A zombie thread-group leader with other threads still running is alive: Go's
    influxd shows that state while it shuts down.
    """
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return not (fields.get("State", "").strip().startswith("Z")
                and fields.get("Threads", "").strip() == "1")


def die_with_parent() -> Callable[[], None] | None:
    """A preexec hook: SIGTERM the child when the starting thread dies (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook
