"""The held-detections journal: round trip of every field, atomic replacement, a bad file moved
aside (and logged), and the backlog keeping it equal to what it holds across a restart."""

from __future__ import annotations

import logging
import math
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from rules.detection import Category, Detection, DetectionState, Severity
from urbanwatch.detection_backlog import DetectionBacklog
from urbanwatch.detection_journal import FILENAME, DetectionJournal
from urbanwatch.durable_file import replace_durably

T0_MS = 1_795_000_000_000
RED = Detection("gas-red", Category.SAFETY, "gas-1", DetectionState.FIRING, Severity.RED,
                T0_MS, 64.0, "gas-1", "lel_pct", "dongcheng", "dongcheng-g1")
CLEAR = Detection("gas-red", Category.SAFETY, "gas-1", DetectionState.CLEARED, Severity.RED,
                  T0_MS + 60_000, 3.5, "gas-1", "lel_pct", "dongcheng", "dongcheng-g1")
AREA = Detection("flood-cluster", Category.FLOOD, "grid:g-0-0", DetectionState.PENDING,
                 Severity.ORANGE, T0_MS + 1, math.nan)  # no device, metric, district, grid


def same(a: Detection, b: Detection) -> bool:
    """Equal, with NaN equal to itself."""
    if math.isnan(a.value):
        return math.isnan(b.value) and replace(a, value=0.0) == replace(b, value=0.0)
    return a == b


def test_every_field_of_every_batch_comes_back_in_order(tmp_path: Path) -> None:
    journal = DetectionJournal(tmp_path / FILENAME)
    held = [([RED, AREA], T0_MS + 5), ([], T0_MS + 6), ([CLEAR], T0_MS + 70_000)]
    journal.save(held)
    loaded = DetectionJournal(tmp_path / FILENAME).load()
    assert [at for _, at in loaded] == [at for _, at in held]
    for (found, _), (back, _) in zip(held, loaded, strict=True):
        assert len(found) == len(back) and all(map(same, found, back))
    first = loaded[0][0][0]
    assert type(first.severity) is Severity and type(first.category) is Category
    assert type(first.state) is DetectionState
    assert stat.S_IMODE((tmp_path / FILENAME).stat().st_mode) == 0o600


def test_an_empty_backlog_removes_the_file(tmp_path: Path) -> None:
    journal = DetectionJournal(tmp_path / FILENAME)
    journal.save([([RED], T0_MS)])
    journal.save([])
    assert not journal.path.exists() and journal.load() == []
    journal.save([])  # nothing there: nothing to do


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    journal = DetectionJournal(tmp_path / FILENAME)
    journal.save([([RED], T0_MS)])
    before = journal.path.read_bytes()

    def half_then_fail(f) -> None:
        f.write(b'{"format": 1}\n{"now_ms": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_durably(journal.path, half_then_fail)
    assert journal.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [FILENAME]  # no temporary file left
    assert journal.load()[0][0] == [RED]


@pytest.mark.parametrize("text", [
    "",
    '{"format": 1}\n{"now_ms": 1, "detections": []',  # cut short by a crash
    '{"format": 2}\n',
    "not json\n",
    '{"format": 1}\n{"now_ms": 1}\n',
    '{"format": 1}\n{"now_ms": 1, "detections": [{"rule_id": "r"}]}\n',
    '{"format": 1}\n{"now_ms": 1, "detections": [{"rule_id": "r", "category": "safety", '
    '"subject": "s", "state": "firing", "severity": 9, "ts_ms": 1, "value": 1.0}]}\n',
])
def test_an_unreadable_journal_is_moved_aside_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str,
) -> None:
    path = tmp_path / FILENAME
    path.write_text(text)
    with caplog.at_level(logging.ERROR, "urbanwatch.detection_journal"):
        assert DetectionJournal(path).load() == []
    assert not path.exists()
    [aside] = tmp_path.glob(f"{FILENAME}.corrupt-*")
    assert aside.read_text() == text
    assert f"moved to {aside}" in caplog.text


class FlakyStore:
    """The alert store's contract (detections, now_ms), refusing while `down`."""

    def __init__(self) -> None:
        self.down = True
        self.stored: list[tuple[list[Detection], int]] = []

    async def __call__(self, found: list[Detection], now_ms: int) -> None:
        if self.down:
            raise ConnectionError("database is locked")
        self.stored.append((found, now_ms))


async def test_held_detections_survive_a_restart_and_are_stored_first_in_order(
    tmp_path: Path,
) -> None:
    path, store = tmp_path / FILENAME, FlakyStore()
    backlog = DetectionBacklog(store, journal=DetectionJournal(path))
    await backlog.put([RED], T0_MS)
    await backlog.put([CLEAR], T0_MS + 60_000)
    assert backlog.size == 2 and DetectionJournal(path).load() == [([RED], T0_MS),
                                                                   ([CLEAR], T0_MS + 60_000)]
    # the process dies here; a new one loads the journal before anything new arrives
    after = DetectionBacklog(store, journal=DetectionJournal(path))
    assert after.load_journal() == 2 and after.size == 2
    assert not await after.flush()  # still down: held, the journal unchanged
    assert path.exists()
    store.down = False
    await after.put([AREA], T0_MS + 70_000)  # queued behind the held ones
    assert [found for found, _ in store.stored] == []
    assert await after.flush()
    assert store.stored == [([RED], T0_MS), ([CLEAR], T0_MS + 60_000), ([AREA], T0_MS + 70_000)]
    assert after.size == 0 and not path.exists()


async def test_a_detection_stored_at_once_never_touches_the_journal(tmp_path: Path) -> None:
    store = FlakyStore()
    store.down = False
    backlog = DetectionBacklog(store, journal=DetectionJournal(tmp_path / FILENAME))
    await backlog.put([RED], T0_MS)
    assert store.stored == [([RED], T0_MS)] and backlog.size == 0
    assert list(tmp_path.iterdir()) == []
