"""Notice that a file changed, by its mtime: how the rule and routing files are followed.

Polled from the runners' ticks rather than watched with inotify: the files are small, a tick
is at most a few seconds, and it works on every filesystem. A missing or unreadable file is
one more state (a change when it appears or goes away); with no path, nothing ever changes.
"""

from __future__ import annotations

from pathlib import Path


class FileWatch:
    """Remembers the mtime of `path` last seen; `changed` reports each new one once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen_ns = self._mtime_ns()

    def changed(self) -> bool:
        """Whether the mtime differs from the one last seen (which it then becomes)."""
        mtime_ns = self._mtime_ns()
        if mtime_ns == self._seen_ns:
            return False
        self._seen_ns = mtime_ns
        return True

    def mark_seen(self) -> None:
        """Take the current mtime as seen (the file was just read on demand)."""
        self._seen_ns = self._mtime_ns()

    def _mtime_ns(self) -> int | None:
        if self.path is None:
            return None
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None
