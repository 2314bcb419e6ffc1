"""Rule groups and the routing of a round's readings to them.

Rules that match exactly the same series form a group: they share member rows, one ring (as
long as the longest window any of them keeps) and, in each round, the window gathers and the
memoized subexpressions of their frames. Slots reach groups through their signature (the set of
groups they belong to): two int32 columns per slot (signature, position among the signature's
slots) replace a slot -> row table per rule, so routing costs 8 bytes per series however many
rules there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rules.engine.plan import SlotTable, matched_slots, ring_capacity
from rules.engine.state import Ring
from rules.language.model import Rule

INT16_MAX = int(np.iinfo(np.int16).max)

if TYPE_CHECKING:
    from rules.engine.series_rule import SeriesRule


@dataclass
class Group:
    """Rules sharing their member series; ``slots`` are the members in row order."""

    slots: np.ndarray
    offset: np.ndarray  # signature -> row of that signature's first slot, -1 if not a member
    ring: Ring | None
    rules: list[SeriesRule]

    @property
    def nbytes(self) -> int:
        return self.slots.nbytes + self.offset.nbytes + (self.ring.nbytes if self.ring else 0)


@dataclass
class Routing:
    """Per-slot signature and position, and the groups (member rows in signature order).

    ``pairs`` lists every (group, signature of a member) as three columns (group, signature,
    row of that signature's first slot in the group), by group: `route` cuts a round with them.
    """

    signature: np.ndarray
    position: np.ndarray
    groups: list[Group]
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def of_rules(cls, rules: list[Rule], table: SlotTable) -> tuple[Routing, list[int]]:
        """Group ``rules`` by the series they match: the routing, and each rule's group."""
        groups: dict[bytes, int] = {}
        members: list[np.ndarray] = []
        caps, group_of = [], []
        for rule in rules:
            slots = matched_slots(rule, table)
            g = groups.setdefault(slots.tobytes(), len(groups))
            if g == len(members):
                members.append(slots)
                caps.append(0)
            caps[g] = max(caps[g], ring_capacity(rule, table, slots))
            group_of.append(g)
        return cls.build(len(table), members, caps), group_of

    @classmethod
    def build(cls, n_slots: int, members: list[np.ndarray], caps: list[int]) -> Routing:
        """Route slots to groups given each group's member slots and ring capacity."""
        n_groups = len(members)
        if n_slots == 0 or n_groups == 0:
            empty = np.zeros(n_slots, dtype=np.int32)
            none = np.zeros(0, dtype=np.int64)
            return cls(empty, empty.copy(), [
                Group(np.zeros(0, dtype=np.int64), np.full(1, -1, dtype=np.int64), None, [])
                for _ in members], (none, none, none))
        belongs = np.zeros((n_slots, n_groups), dtype=bool)
        for g, slots in enumerate(members):
            belongs[slots, g] = True
        keys, signature = np.unique(np.packbits(belongs, axis=1), axis=0, return_inverse=True)
        signature = signature.reshape(-1).astype(np.int32)
        order = np.argsort(signature, kind="stable")
        sizes = np.bincount(signature, minlength=len(keys))
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        position = np.empty(n_slots, dtype=np.int32)
        position[order] = np.arange(n_slots) - starts[signature[order]]
        in_sig = np.unpackbits(keys, axis=1, count=n_groups).astype(bool)
        groups = []
        for g in range(n_groups):
            sigs = np.flatnonzero(in_sig[:, g])
            offset = np.full(len(keys), -1, dtype=np.int64)
            offset[sigs] = np.r_[0, np.cumsum(sizes[sigs])[:-1]]
            slots = np.concatenate([order[starts[s]:starts[s] + sizes[s]] for s in sigs]
                                   ).astype(np.int64) if len(sigs) else np.zeros(0, np.int64)
            ring = Ring(len(slots), caps[g]) if caps[g] else None
            groups.append(Group(slots, offset, ring, []))
        pair_group, pair_sig = np.nonzero(in_sig.T)
        pair_offset = np.array([groups[g].offset[s] for g, s in zip(pair_group, pair_sig,
                                                                   strict=True)], dtype=np.int64)
        return cls(signature, position, groups, (pair_group, pair_sig, pair_offset))

    def route(self, slots: np.ndarray) -> Iterator[tuple[Group, np.ndarray, np.ndarray]]:
        """(group, indices into the round, member rows) of each group with readings in a round.

        ``slots`` holds each slot at most once. The round is sorted by signature once, and each
        group's readings are the runs of its signatures; within a group they come signature by
        signature (every group operation is per row, so the order changes no result).
        """
        if len(self.pairs[0]) == 0 or len(slots) == 0:
            return
        pair_group, pair_sig, pair_offset = self.pairs
        signature = self.signature[slots]
        n_sig = len(self.groups[0].offset)
        key = signature.astype(np.int16) if n_sig <= INT16_MAX else signature
        order = np.argsort(key, kind="stable")  # a radix sort for 16-bit keys
        counts = np.bincount(signature, minlength=n_sig)
        length = counts[pair_sig]
        first = np.cumsum(length) - length  # where each pair's run starts in the output
        idx = np.arange(length.sum()) + np.repeat(
            (np.cumsum(counts) - counts)[pair_sig] - first, length)
        sel = order[idx]
        rows = self.position[slots[sel]] + np.repeat(pair_offset, length)
        ends = np.cumsum(np.bincount(pair_group, weights=length, minlength=len(self.groups)))
        lo = 0
        for group, hi in zip(self.groups, ends.astype(np.int64).tolist(), strict=True):
            if hi > lo:
                yield group, sel[lo:hi], rows[lo:hi]
            lo = hi

    @property
    def nbytes(self) -> int:
        return self.signature.nbytes + self.position.nbytes + sum(g.nbytes for g in self.groups)
