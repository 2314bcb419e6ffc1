"""The C publisher (`simulators/publisher.c`, libmosquitto): pre-generated messages at a rate.

One Python paho client tops out near 12,000 readings/s here; the C publisher sends what Python
wrote into a message file beforehand (``topic<TAB>payload`` lines, or with a leading device
slot when the payloads are stamped at publish time), so generating the load is no longer the
bottleneck. It is compiled with the system's ``cc`` on first use (``build``), reports progress
while it runs (`progress_lines`) and the acknowledged count at the end (`wait_published`).
`urbanwatch simulate --publisher c` and the benchmarks use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from simulators.errors import SimulatorError

SOURCE = Path(__file__).with_name("publisher.c")
INSTALL_HINT = "sudo apt-get install -y libmosquitto-dev"
STAMP = "0000000000000"  # 13 digits the publisher overwrites with the epoch ms of publishing


class CPublisherError(SimulatorError):
    """The publisher could not be built or did not get every message acknowledged."""


@dataclass(frozen=True)
class Progress:
    seconds: float
    published: int  # messages handed to libmosquitto
    acknowledged: int


def build(out_dir: Path, source: Path = SOURCE) -> Path:
    """Compile `source` (a libmosquitto client) into `out_dir`, once: a binary newer than its
    source is reused; a clear error when cc or libmosquitto is missing."""
    binary = out_dir / f"uw-{source.stem}"
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise CPublisherError("no C compiler (cc) found; install one and libmosquitto-dev: "
                              "sudo apt-get install -y gcc libmosquitto-dev")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.part")
    done = subprocess.run([cc, "-O2", "-o", str(partial), str(source), "-lmosquitto"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        missing = "mosquitto.h" in done.stderr or "lmosquitto" in done.stderr
        hint = f"libmosquitto is missing: {INSTALL_HINT}" if missing else "compiling failed"
        raise CPublisherError(f"cannot build {source.name} ({hint}):\n{done.stderr[-800:]}")
    partial.replace(binary)
    return binary


def publish(
    binary: Path, host: str, port: int, messages: Path, max_inflight: int, *, qos: int = 1,
    rate: float = 0.0, stamped: bool = False, count: int = 0,
    username: str | None = None, password: str | None = None,
) -> subprocess.Popen[str]:
    """Start publishing `messages` (returns at once; see `progress_lines`, `wait_published`).

    `rate` in messages/s (0: as fast as the broker takes them); `count` messages going round
    the file (0: the file once); `stamped`: the file has device slots and stamp placeholders.
    """
    env = {**os.environ, "UW_MQTT_USERNAME": username or "", "UW_MQTT_PASSWORD": password or ""}
    argv = [str(binary), host, str(port), str(messages), str(max_inflight), str(qos),
            repr(float(rate)), "1" if stamped else "0", str(count)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def progress_lines(proc: subprocess.Popen[str]) -> Iterator[Progress | str]:
    """The publisher's stdout as it comes: a `Progress` per second, then its last line."""
    assert proc.stdout is not None
    for line in proc.stdout:
        words = line.split()
        if len(words) == 4 and words[0] == "progress":
            yield Progress(float(words[1]), int(words[2]), int(words[3]))
        else:
            yield line


def wait_published(proc: subprocess.Popen[str], expected: int, timeout_s: float,
                   last_line: str | None = None) -> float:
    """Seconds the publisher took until the last acknowledgement; raises unless all were
    acknowledged. `last_line`: its final line when the caller already read stdout."""
    out, err = proc.communicate(timeout=timeout_s)
    lines = [line for line in [*(last_line or "").splitlines(), *out.splitlines()]
             if line.startswith("acknowledged ")]
    words = lines[-1].split() if lines else []  # acknowledged <n> of <total> in <seconds>
    acked = int(words[1]) if len(words) == 6 else 0
    if proc.returncode != 0 or acked != expected:
        raise CPublisherError(
            f"publisher: {acked} of {expected} acknowledged; {err.strip()[-400:]}")
    return float(words[5])
