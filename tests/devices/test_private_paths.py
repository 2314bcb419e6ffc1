"""Owner-only folders (0700) and files (0600) whatever the umask, including one that would
leave the owner unable to write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.private_paths import open_private, private_dir, private_file


@pytest.fixture(params=[0o000, 0o022, 0o077, 0o277], ids=lambda m: f"umask-{m:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_folders_and_their_missing_parents_are_owner_only(tmp_path: Path, umask: int) -> None:
    made = private_dir(tmp_path / "a" / "b" / "state")
    assert made == tmp_path / "a" / "b" / "state"
    assert [mode(p) for p in (made, made.parent, made.parent.parent)] == [0o700] * 3
    private_dir(made)  # again: nothing to do


def test_an_existing_folder_is_left_as_it_is(tmp_path: Path, umask: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    private_dir(shared)
    assert mode(shared) == 0o755


def test_files_are_owner_only_new_or_old(tmp_path: Path, umask: int) -> None:
    fresh = private_file(tmp_path / "fresh")
    old = tmp_path / "old"
    old.write_text("kept")
    os.chmod(old, 0o644)
    fd = open_private(old, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, b"+more")
    os.close(fd)
    assert (mode(fresh), mode(old), old.read_text()) == (0o600, 0o600, "kept+more")
