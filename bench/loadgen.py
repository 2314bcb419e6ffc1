"""The ingest benchmark's load: message files for the C publisher (`simulators.c_publisher`).

Messages are generated up front into a file of ``topic<TAB>payload`` lines, so the C
publisher only reads memory and publishes at QoS 1, waiting for every PUBACK.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from devices.catalogue import Catalogue
from devices.registry import Device


def write_messages(
    path: Path, devices: list[Device], catalogue: Catalogue, n_readings: int, pack: int,
    prefix: str, t0_ms: int, seed: int = 0,
) -> int:
    """`n_readings` readings, `pack` per message, round-robin over `devices`; returns messages.

    pack == 1: compact JSON ``{"ts", "m": {metric: v}}``; otherwise a SenML pack of one
    metric at `pack` successive seconds. Every reading is its own point (device and time
    differ), so InfluxDB's count equals the readings sent.
    """
    rng = np.random.default_rng(seed)
    n_messages = -(-n_readings // pack)
    specs = [next(iter(catalogue[d.type].metrics.values())) for d in devices]
    fractions = rng.uniform(0.1, 0.9, n_readings).round(4).tolist()
    lines, r = [], 0
    for i in range(n_messages):
        k, round_ = i % len(devices), i // len(devices)
        device, spec = devices[k], specs[k]
        topic = f"{prefix}city/{device.district}/{device.id}/data"
        size = min(pack, n_readings - r)
        values = [round(spec.min + (spec.max - spec.min) * f, 2) for f in fractions[r : r + size]]
        r += size
        ts_ms = t0_ms + round_ * pack * 1000
        if pack == 1:
            body: object = {"ts": ts_ms, "m": {spec.name: values[0]}}
        else:
            first = {"bn": f"urn:dev:{device.id}:", "bt": ts_ms // 1000, "n": spec.name,
                     "v": values[0]}
            body = [first, *({"n": spec.name, "t": j, "v": v} for j, v in enumerate(values)
                             if j)]
        lines.append(f"{topic}\t{json.dumps(body, separators=(',', ':'))}\n")
    path.write_text("".join(lines))
    return n_messages
