"""Cutting a batch into rounds in which each series appears at most once, in time order.

A batch is sorted by (slot, ts, arrival); round r holds every series' r-th reading, so stateful
operators and detectors see each series in time order. A batch holding each series at most once
(the common case) is one round as it is, unsorted: all work in a round is per series, so the
order within a round changes nothing. A reading not newer than its series' last accepted reading
is dropped and counted (``late`` if older, ``duplicate`` if the same ts; within a batch the first
arrival of a ts wins); so is a reading of an unknown slot (``unknown_slot``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from devices.batch import ReadingBatch


@dataclass
class Stats:
    """An engine's counters since it was built: readings taken and dropped, detections out."""

    readings: int = 0
    late: int = 0
    duplicate: int = 0
    unknown_slot: int = 0
    detections: int = 0
    tick_judged: int = 0  # members and areas ticks judged or promoted: what fell due


Round = tuple[np.ndarray, np.ndarray, np.ndarray]  # slots, ts_ms, values


def rounds(batch: ReadingBatch, last_ts: np.ndarray, stats: Stats) -> Iterator[Round]:
    """The rounds of ``batch`` given each slot's last accepted time; counts into ``stats``."""
    stats.readings += len(batch)
    known = (batch.slot >= 0) & (batch.slot < len(last_ts))
    stats.unknown_slot += int((~known).sum())
    b = batch.take(known) if not known.all() else batch
    if len(b) and _distinct(b.slot):
        yield from _single_round(b.slot, b.ts_ms, b.value, last_ts, stats)
        return
    order = np.lexsort((np.arange(len(b)), b.ts_ms, b.slot))
    slot, ts, value = b.slot[order], b.ts_ms[order], b.value[order]
    same = np.zeros(len(slot), dtype=bool)
    same[1:] = (slot[1:] == slot[:-1]) & (ts[1:] == ts[:-1])
    last = last_ts[slot]
    late = ts < last
    dup = same | (ts == last)
    stats.late += int(late.sum())
    stats.duplicate += int((dup & ~late).sum())
    keep = ~(late | dup)
    slot, ts, value = slot[keep], ts[keep], value[keep]
    if len(slot) == 0:
        return
    first = np.ones(len(slot), dtype=bool)
    first[1:] = slot[1:] != slot[:-1]
    idx = np.arange(len(slot))
    rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.cumsum(np.bincount(rank))
    for lo, hi in zip(np.r_[0, bounds[:-1]], bounds, strict=True):
        sel = by_rank[lo:hi]
        yield slot[sel], ts[sel], value[sel]


def _distinct(slot: np.ndarray) -> bool:
    """Whether no slot repeats (by sorting the batch, not by counting over every slot)."""
    ordered = np.sort(slot)
    return not bool((ordered[1:] == ordered[:-1]).any())


def _single_round(slot: np.ndarray, ts: np.ndarray, value: np.ndarray, last_ts: np.ndarray,
                  stats: Stats) -> Iterator[Round]:
    """A batch with each series at most once: drop late and duplicate readings, one round."""
    last = last_ts[slot]
    late, dup = ts < last, ts == last
    stats.late += int(late.sum())
    stats.duplicate += int(dup.sum())
    if late.any() or dup.any():
        keep = ~(late | dup)
        slot, ts, value = slot[keep], ts[keep], value[keep]
    if len(slot):
        yield slot, ts, value
