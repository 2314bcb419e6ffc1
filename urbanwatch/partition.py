"""Which districts one worker owns when several share the city (`serve --partition k/N`).

A district belongs to exactly one partition: `--partition k/N` owns the districts whose
CRC-32 of the id, modulo N, is k - 1 (a hash every process and every Python version agrees
on, unlike the salted built-in `hash`); `--districts D01,D02` owns the districts listed. Grid
cells belong to their district, so a spatial rule over a cell or a district sees all of its
sensors in the one worker that owns the district.

    >>> Partition.parse("1/2").owns("D01"), Partition.parse("2/2").owns("D01")
    (False, True)
    >>> Partition.listed("D03,D01").name
    'districts-48f27af0'
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace

from devices import names
from devices.registry import Device, DeviceStatus, Registry


@dataclass(frozen=True)
class Partition:
    """Either `index`/`count` (1-based: 1/2 and 2/2) or a fixed set of `districts`."""

    index: int = 1
    count: int = 1
    districts: frozenset[str] | None = None

    @classmethod
    def parse(cls, text: str) -> Partition:
        """`k/N` with 1 <= k <= N.

        Raises:
            ValueError: saying what a good value looks like.
        """
        k, slash, n = text.partition("/")
        if not (slash and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            raise ValueError(f"--partition {text!r}: expected k/N with 1 <= k <= N, e.g. 1/2")
        return cls(int(k), int(n))

    @classmethod
    def listed(cls, text: str) -> Partition:
        """Comma-separated district ids, each checked by the one name grammar.

        Raises:
            InvalidNameError: a district id the grammar refuses (a ValueError).
            ValueError: no district given.
        """
        ids = [part.strip() for part in text.split(",") if part.strip()]
        if not ids:
            raise ValueError("--districts: name at least one district, e.g. D01,D02")
        return cls(districts=frozenset(names.check(names.Kind.DISTRICT, d) for d in ids))

    @property
    def name(self) -> str:
        """A name for this partition in client ids and share groups (stable across restarts)."""
        if self.districts is not None:
            listed = ",".join(sorted(self.districts)).encode()
            return f"districts-{zlib.crc32(listed):08x}"
        return f"p{self.index}of{self.count}"

    def owns(self, district: str) -> bool:
        if self.districts is not None:
            return district in self.districts
        return zlib.crc32(district.encode()) % self.count == self.index - 1

    def own_districts(self, known: Iterable[str]) -> tuple[str, ...]:
        """The districts of `known` this partition owns (all listed ones, known or not)."""
        own = {d for d in known if self.owns(d)} | (self.districts or frozenset())
        return tuple(sorted(own))

    def own_devices(self, devices: Iterable[Device]) -> list[Device]:
        return [d for d in devices if self.owns(d.district)]


def held_changes(held: Registry, subscribed: Iterable[str],
                 changed: Iterable[Device]) -> list[Device]:
    """What a worker holding `held` and subscribed to `subscribed` districts takes of
    `changed` devices: those in its districts, and those it held that moved out of them as
    retired, so its engine stops judging them and their open alerts close (the worker owning
    their new district judges them from now on)."""
    districts = set(subscribed)
    changed = list(changed)
    own = [d for d in changed if d.district in districts]
    gone = [replace(d, status=DeviceStatus.RETIRED) for d in changed
            if d.district not in districts and held.get(d.id) is not None]
    return own + gone
