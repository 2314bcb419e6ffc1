"""`FileWatch`: each new mtime of a followed file is reported once."""

from __future__ import annotations

import os
from pathlib import Path

from urbanwatch.file_watch import FileWatch


def _touch(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_new_mtime_is_a_change_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("[]")
    _touch(path, 1_000_000_000)
    watch = FileWatch(path)

    assert not watch.changed()
    _touch(path, 2_000_000_000)
    assert watch.changed()
    assert not watch.changed()


def test_appearing_and_disappearing_are_changes(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    watch = FileWatch(path)

    assert not watch.changed()
    path.write_text("{}")
    assert watch.changed()
    path.unlink()
    assert watch.changed() and not watch.changed()


def test_mark_seen_swallows_the_pending_change(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    watch = FileWatch(path)
    path.write_text("[]")

    watch.mark_seen()

    assert not watch.changed()


def test_without_a_path_nothing_changes() -> None:
    assert not FileWatch(None).changed()
