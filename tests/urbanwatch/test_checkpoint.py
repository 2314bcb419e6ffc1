"""The engine checkpoint file: round trip, atomic replacement, and a bad file ignored, not
misapplied (both by `urbanwatch.checkpoint` and by `Judge.restore`); the alive mark beside it,
which keeps the platform's own downtime from counting as the devices' silence."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Device, Registry
from rules.detection import DetectionState
from urbanwatch.checkpoint import (
    ALIVE,
    FILENAME,
    last_alive,
    load_checkpoint,
    mark_alive,
    write_checkpoint,
)
from urbanwatch.judging import Judge

T0_MS = 1_795_000_000_000
RULES = """
- {id: gas-high, category: safety, match: {device_type: gas, metric: lel_pct},
   when: value >= 20, clear_when: value < 10, severity: red}
- {id: gas-silent, category: device, match: {device_type: gas, metric: lel_pct},
   when: stale(5m), severity: orange}
- {id: gas-odd, category: safety, match: {device_type: gas, metric: lel_pct},
   when: anomaly(combined) > 0.99}
"""
NEVER = np.iinfo(np.int64).min


async def _ignore(found: list, now_ms: int) -> None:
    return None


def registry(*ids: str) -> Registry:
    return Registry.build(load_catalogue(), [Device(i, "gas", "d1", 39.9, 116.4, "g-0-0")
                                             for i in ids])


def judge(tmp_path: Path, devices: Registry, rules: str = RULES,
          clock_ms: Callable[[], int] = lambda: T0_MS) -> Judge:
    rules_path = tmp_path / "rules.yaml"
    if not rules_path.exists() or rules_path.read_text() != rules:
        rules_path.write_text(rules)
    return Judge(lambda: devices, _ignore, rules_path=rules_path,
                 checkpoint_path=tmp_path / FILENAME, clock_ms=clock_ms)


async def learned(tmp_path: Path) -> Judge:
    """A judge whose engine saw 250 readings of gas-1 and gas-2, checkpointed."""
    devices = registry("gas-1", "gas-2")
    j = judge(tmp_path, devices)
    slots = [devices.slot(d, "lel_pct") for d in ("gas-1", "gas-2")]
    for k in range(250):
        await j.on_batch(ReadingBatch.from_columns(slots, [T0_MS + k * 1000] * 2,
                                                   [1.0 + (k % 7) * 0.1, 25.0]), T0_MS)
    await j.checkpoint()
    return j


async def test_round_trip_restores_everything_the_engine_learned(tmp_path: Path) -> None:
    before = await learned(tmp_path)
    snap, saved_ms = load_checkpoint(tmp_path / FILENAME) or ({}, 0)
    assert saved_ms == T0_MS
    original = before.engine.snapshot()
    assert snap.keys() == original.keys()
    assert all(np.array_equal(snap[k], original[k]) for k in snap)

    # a different registry order after the restart (gas-0 added first) changes no series
    after = judge(tmp_path, registry("gas-0", "gas-2", "gas-1"))
    await after.restore(ReadingBatch.empty(), [])
    old, new = before.engine, after.engine
    for device in ("gas-1", "gas-2"):
        s_old, s_new = before.engine.registry.slot(device, "lel_pct"), \
            after.engine.registry.slot(device, "lel_pct")
        assert new.ctx.series.last_ts[s_new] == old.ctx.series.last_ts[s_old]
        row_old = old.ctx.detector_rows["combined"][s_old]
        row_new = new.ctx.detector_rows["combined"][s_new]
        assert new.detectors["combined"].count[row_new] == 250  # type: ignore[attr-defined]
        assert old.detectors["combined"].count[row_old] == 250  # type: ignore[attr-defined]
    gas2 = after.engine.registry.slot("gas-2", "lel_pct")
    found = new.evaluate(ReadingBatch.from_columns([gas2], [T0_MS + 300_000], [5.0]), T0_MS)
    assert ("gas-high", "gas-2", DetectionState.CLEARED) in [
        (d.rule_id, d.subject, d.state) for d in found]  # it was firing before the restart
    # and the warmed-up detector finds a drop from the learned 25 an anomaly at once
    assert ("gas-odd", "gas-2", DetectionState.FIRING) in [
        (d.rule_id, d.subject, d.state) for d in found]


async def test_write_replaces_atomically_and_a_failed_write_keeps_the_old_one(
        tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    write_checkpoint(path, {"a": np.arange(3)}, 1)
    with pytest.raises(ValueError):  # object arrays need pickle, which is refused mid-write
        write_checkpoint(path, {"a": np.arange(5), "b": np.array([object()])}, 2)
    loaded = load_checkpoint(path)
    assert loaded is not None and loaded[1] == 1 and list(loaded[0]["a"]) == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILENAME]  # no temporary file left


@pytest.mark.parametrize("damage", ["truncated", "flipped", "format", "not_zip"])
async def test_a_corrupt_or_foreign_file_is_ignored_with_a_log_line(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    await learned(tmp_path)
    path = tmp_path / FILENAME
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":  # inside a member's data: its CRC-32 no longer matches
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("series.last_ts.npy")
        at = info.header_offset + 30 + len(info.filename) + info.file_size - 1
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "format":
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["checkpoint.format"] = np.array([99])
        with path.open("wb") as f:
            np.savez(f, **arrays)
    else:
        path.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="urbanwatch.checkpoint"):
        assert load_checkpoint(path) is None
    assert "ignored" in caplog.text
    fresh = judge(tmp_path, registry("gas-1", "gas-2"))
    await fresh.restore(ReadingBatch.empty(), [])
    assert (fresh.engine.ctx.series.last_ts == NEVER).all()


async def test_a_checkpoint_that_does_not_fit_is_rebuilt_not_misapplied(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await learned(tmp_path)
    path = tmp_path / FILENAME
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["rule.0.state"] = arrays["rule.0.state"][:0]  # shape no longer fits its slots
    with path.open("wb") as f:
        np.savez(f, **arrays)
    fresh = judge(tmp_path, registry("gas-1", "gas-2"))
    with caplog.at_level(logging.WARNING, logger="urbanwatch.judging"):
        await fresh.restore(ReadingBatch.empty(), [])
    assert "does not fit" in caplog.text
    assert (fresh.engine.ctx.series.last_ts == NEVER).all()
    assert not any(sr.state.state.any() for sr in fresh.engine.series_rules)


async def test_changed_rules_keep_what_fits_and_start_the_rest_fresh(tmp_path: Path) -> None:
    before = await learned(tmp_path)
    changed = RULES.replace("value >= 20", "value >= 30")
    after = judge(tmp_path, registry("gas-1", "gas-2"), changed)
    await after.restore(ReadingBatch.empty(), [])
    high = next(sr for sr in after.engine.series_rules if sr.rule.id == "gas-high")
    assert not high.state.state.any()  # its definition changed: fresh
    assert np.array_equal(after.engine.ctx.series.last_ts, before.engine.ctx.series.last_ts)
    assert after.engine.detectors["combined"].count.max() == 250  # type: ignore[attr-defined]


async def test_the_time_between_the_last_alive_mark_and_the_restore_is_no_silence(
        tmp_path: Path) -> None:
    devices = registry("gas-1", "gas-2")
    slots = [devices.slot(d, "lel_pct") for d in ("gas-1", "gas-2")]
    minute = 60_000
    now = [T0_MS]
    first = judge(tmp_path, devices, clock_ms=lambda: now[0])
    await first.restore(ReadingBatch.from_columns(slots, [T0_MS - 3 * minute,
                                                          T0_MS - 6 * minute], [1.0, 1.0]), [])
    alive = last_alive(tmp_path / ALIVE)  # marked at the start, then while it runs
    assert alive is not None and alive.ms == T0_MS
    first.close()
    now[0] = T0_MS + 30 * minute  # stopped for half an hour, without a checkpoint
    second = judge(tmp_path, devices, clock_ms=lambda: now[0])
    await second.restore(ReadingBatch.from_columns(slots, [T0_MS - 3 * minute,
                                                           T0_MS - 6 * minute], [1.0, 1.0]), [])
    silent = [d.subject for d in second.engine.tick(now[0]) if d.state is DetectionState.FIRING]
    assert silent == ["gas-2"]  # 6 minutes heard from before the stop; gas-1 only 3
    later = second.engine.tick(now[0] + 2 * minute)
    assert [d.subject for d in later if d.state is DetectionState.FIRING] == ["gas-1"]
    second.close()


def test_a_missing_or_garbled_alive_mark_is_none(tmp_path: Path) -> None:
    path = tmp_path / ALIVE
    assert last_alive(path) is None
    for garbled in ("not a time", "{}", '{"ms": 1, "downtimes": [[1]]}', "[]"):
        path.write_text(garbled)
        assert last_alive(path) is None, garbled
    mark_alive(path, T0_MS, [(1, 2), (3, None)])
    assert last_alive(path) == (T0_MS, [(1, 2), (3, None)])
