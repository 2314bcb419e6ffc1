"""The C publisher (`simulators/publisher.c`, libmosquitto): pre-generated messages at a rate.

One Python paho client tops out near 12,000 readings/s here; the C publisher sends what Python
wrote into a message file beforehand (``topic<TAB>payload`` lines, or with a leading device
slot when the payloads are stamped at publish time), so generating the load is no longer the
bottleneck. It is compiled with the system's ``cc`` on first use (``build``), reports progress
while it runs (`progress_lines`) and the acknowledged count at the end (`wait_published`).
`urbanwatch simulate --publisher c` and the benchmarks use it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from devices.clock import now_ms
from simulators.city import City
from simulators.errors import PublishError, SimulatorError
from simulators.payloads import PayloadFormat, encode_messages
from simulators.publisher import PublishOptions, PublishSummary

SOURCE = Path(__file__).with_name("publisher.c")
INSTALL_HINT = "sudo apt-get install -y libmosquitto-dev"
STAMP = "0000000000000"  # 13 digits the publisher overwrites with the epoch ms of publishing
MAX_GENERATED_MESSAGES = 300_000  # beyond this many, a run goes round the file again
ACK_TIMEOUT_S = 120.0


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
    """The publisher's stdout as it comes: a `Progress` every 0.2 s, then its last line."""
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


def write_city_messages(path: Path, city: City, n_messages: int, messages_per_s: float,
                        prefix: str = "") -> list[int]:
    """The city's messages, round-robin over its devices as `simulators.publisher` sends them,
    as stamped lines (``slot<TAB>topic<TAB>payload``, compact JSON with the time left for the
    publisher to stamp); returns the readings of each line. Each round's values are the city's
    signals at the time that round would be sent at `messages_per_s`."""
    n = len(city.devices)
    period_ms = n / messages_per_s * 1000
    start = now_ms()
    readings: list[int] = []
    with path.open("w") as out:
        for r in range(math.ceil(n_messages / n)):
            k = min(n, n_messages - r * n)
            ts = start + round(r * period_ms)
            idx = np.arange(k)
            was = f'"ts":{ts},'.encode()
            stamp = f'"ts":{STAMP},'.encode()
            for i, message in zip(idx.tolist(), encode_messages(
                    city, idx, np.full(k, ts, dtype=np.int64), PayloadFormat.JSON, prefix),
                    strict=True):
                payload = message.payload.replace(was, stamp, 1).decode()
                out.write(f"{i}\t{message.topic}\t{payload}\n")
                readings.append(message.readings)
    return readings


def publish_city(city: City, options: PublishOptions, rate: float, duration_s: float,
                 work: Path) -> PublishSummary:
    """`simulators.publisher.publish` through the C publisher: about `rate` readings/s for
    `duration_s`, the messages generated first (at most `MAX_GENERATED_MESSAGES`, then sent
    round again with fresh stamps), compact JSON only, no TLS."""
    parts = urlsplit(options.url)
    if parts.scheme != "mqtt" or not parts.hostname or options.tls_ca is not None:
        raise PublishError(options.url, "the C publisher needs mqtt://[user:pass@]host[:port] "
                                        "(no TLS)")
    if options.fmt is not PayloadFormat.JSON:
        raise PublishError(options.url, "the C publisher sends compact JSON only")
    per_message = float(np.mean([len(city.catalogue[d.type].metrics) for d in city.devices]))
    messages_per_s = rate / per_message
    n_messages = round(messages_per_s * duration_s)
    n = len(city.devices)
    generated = min(n_messages, max(n, MAX_GENERATED_MESSAGES // n * n))
    binary = build(work)
    path = work / f"simulate-{os.getpid()}.txt"
    try:
        readings = write_city_messages(path, city, generated, messages_per_s,
                                       options.topic_prefix)
        proc = publish(binary, parts.hostname, parts.port or 1883, path, options.max_inflight,
                       qos=options.qos, rate=messages_per_s, stamped=True, count=n_messages,
                       username=unquote(parts.username) if parts.username else None,
                       password=unquote(parts.password or ""))
        try:
            out, err = proc.communicate(timeout=duration_s + ACK_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.terminate()
                out, err = proc.communicate()
    finally:
        path.unlink(missing_ok=True)
    words = next((line.split() for line in reversed(out.splitlines())
                  if line.startswith("acknowledged ")), [])
    if len(words) != 6:
        raise PublishError(options.url, err.strip()[-400:] or "the C publisher ended early")
    acked, seconds = int(words[1]), float(words[5])
    cycle = readings_cycle(readings)
    return PublishSummary(
        messages=n_messages, readings=cycle(n_messages), messages_acked=acked,
        readings_acked=cycle(acked), devices=n, duration_s=seconds)


def readings_cycle(readings: list[int]) -> Callable[[int], int]:
    """Readings in the first `m` messages sent going round a file with these per line."""
    cumulative = np.cumsum([0, *readings])

    def first(m: int) -> int:
        rounds, rest = divmod(m, len(readings))
        return rounds * int(cumulative[-1]) + int(cumulative[rest])

    return first
