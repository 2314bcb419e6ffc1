"""The ingest benchmark's load: message files, and the libmosquitto publisher that sends them.

Messages are generated up front into a file of ``topic<TAB>payload`` lines, so the C
publisher (`bench/publisher.c`, built at bench time with the system's ``cc``) only reads
memory and publishes at QoS 1, waiting for every PUBACK.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from devices.catalogue import Catalogue
from devices.registry import Device

SOURCE = Path(__file__).with_name("publisher.c")
INSTALL_HINT = "sudo apt-get install -y libmosquitto-dev"


class LoadgenError(Exception):
    """The publisher could not be built or did not get every message acknowledged."""


def build_publisher(out_dir: Path) -> Path:
    """Compile the publisher into `out_dir`; a clear error when cc or libmosquitto is missing."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise LoadgenError("no C compiler (cc) found; install one and libmosquitto-dev: "
                           "sudo apt-get install -y gcc libmosquitto-dev")
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "uw-bench-publisher"
    done = subprocess.run([cc, "-O2", "-o", str(binary), str(SOURCE), "-lmosquitto"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        missing = "mosquitto.h" in done.stderr or "lmosquitto" in done.stderr
        hint = f"libmosquitto is missing: {INSTALL_HINT}" if missing else "compiling failed"
        raise LoadgenError(f"cannot build the benchmark publisher ({hint}):\n{done.stderr[-800:]}")
    return binary


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


def publish(
    binary: Path, host: str, port: int, messages: Path, max_inflight: int
) -> subprocess.Popen[str]:
    """Start publishing `messages` (returns at once; see `wait_published`)."""
    return subprocess.Popen([str(binary), host, str(port), str(messages), str(max_inflight)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_published(proc: subprocess.Popen[str], expected: int, timeout_s: float) -> float:
    """Seconds the publisher took until the last PUBACK; raises unless all were acknowledged."""
    out, err = proc.communicate(timeout=timeout_s)
    words = out.split()  # acknowledged <n> of <total> in <seconds>
    acked = int(words[1]) if len(words) == 6 and words[0] == "acknowledged" else 0
    if proc.returncode != 0 or acked != expected:
        raise LoadgenError(f"publisher: {acked} of {expected} acknowledged; {err.strip()[-400:]}")
    return float(words[5])
