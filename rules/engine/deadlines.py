"""Rows kept in the order they fall due, so that a tick looks only at what is due.

A calendar of buckets ``width_ms`` wide, keyed by ``due // width_ms`` (the keys in a heap):
`Deadlines.push` files a round's (row, due) pairs into their buckets at once, `Deadlines.pop_due`
takes every pair due by ``now_ms`` (the whole buckets before now's and the due part of now's).
The cost of both follows the pairs pushed and popped, never the number of rows.

Entries are never removed early: a row whose deadline moved keeps its old entry, and whoever
pops it checks the row against its own state (a row may come out more than once).
"""

from __future__ import annotations

import heapq

import numpy as np

_CHUNKS_MAX = 32  # a bucket's pushes are merged into one pair of arrays beyond this many


class Deadlines:
    """(row, due time) pairs by due time, in buckets of ``width_ms``."""

    def __init__(self, width_ms: int = 1_000) -> None:
        self.width_ms = width_ms
        self._buckets: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._keys: list[int] = []  # heap of the bucket keys in use
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def push(self, rows: np.ndarray, due_ms: np.ndarray) -> None:
        """File each of ``rows`` under its ``due_ms``."""
        if len(rows) == 0:
            return
        rows = rows.astype(np.int64, copy=False)
        due_ms = due_ms.astype(np.int64, copy=False)
        key = due_ms // self.width_ms
        lo_key, hi_key = int(key.min()), int(key.max())
        if lo_key == hi_key:  # the common case: a round's deadlines share a bucket
            self._add(lo_key, rows, due_ms)
            return
        order = np.argsort(key, kind="stable")
        key, rows, due_ms = key[order], rows[order], due_ms[order]
        cuts = (np.flatnonzero(np.diff(key)) + 1).tolist()
        for lo, hi in zip([0, *cuts], [*cuts, len(key)], strict=True):
            self._add(int(key[lo]), rows[lo:hi], due_ms[lo:hi])

    def pop_due(self, now_ms: int) -> np.ndarray:
        """Take the rows due at or before ``now_ms`` (a row may come out more than once)."""
        taken: list[np.ndarray] = []
        now_key = now_ms // self.width_ms
        while self._keys and self._keys[0] <= now_key:
            key = self._keys[0]
            rows, due = self._merged(key)
            if key < now_key or bool((due <= now_ms).all()):
                taken.append(rows)
                heapq.heappop(self._keys)
                del self._buckets[key]
                self._n -= len(rows)
                continue
            due_now = due <= now_ms
            taken.append(rows[due_now])
            self._buckets[key] = [(rows[~due_now], due[~due_now])]
            self._n -= int(due_now.sum())
            break
        if not taken:
            return np.zeros(0, dtype=np.int64)
        return taken[0] if len(taken) == 1 else np.concatenate(taken)

    def clear(self) -> None:
        self._buckets.clear()
        self._keys.clear()
        self._n = 0

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes + d.nbytes for chunks in self._buckets.values() for r, d in chunks)

    def _add(self, key: int, rows: np.ndarray, due_ms: np.ndarray) -> None:
        chunks = self._buckets.get(key)
        if chunks is None:
            chunks = self._buckets[key] = []
            heapq.heappush(self._keys, key)
        chunks.append((rows.copy(), due_ms.copy()))
        self._n += len(rows)
        if len(chunks) > _CHUNKS_MAX:
            self._buckets[key] = [self._merged(key)]

    def _merged(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        chunks = self._buckets[key]
        if len(chunks) == 1:
            return chunks[0]
        return (np.concatenate([r for r, _ in chunks]), np.concatenate([d for _, d in chunks]))
