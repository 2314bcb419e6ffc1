"""Keep Python's cyclic garbage collector off what the platform builds once and keeps.

A city's registry is a few Python objects per device and series (several hundred thousand at
100,000 devices), and every full collection walks all of them with the GIL held: 0.4-0.7 s
each at 100,000 devices, every 15-20 s under load, stalling ingest, judging and the API alike
(BENCHMARKS.md, "Full garbage collections"). Built once, they live as long as the platform and
hold no reference cycles, so after startup they are moved out of the collector's sight
(`gc.freeze`). One replaced later is still freed by reference counting, and a registry update
shares them rather than building new ones (`devices.registry.Registry.updated`).
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Free what startup left behind, then exempt every object alive now from collections."""
    gc.collect()
    gc.freeze()
