"""CPU time and resident memory of a process, read from /proc (Linux); stopping one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (its threads included)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout_s`; reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_bytes(pid: int) -> int:
    """Resident memory of the process now (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(f"no VmRSS for process {pid}")


class CpuMeter:
    """CPU seconds used by named processes between `start()` and `stop()` (for the names in
    `trees`, with their children: `tree_cpu_seconds`)."""

    def __init__(self, pids: dict[str, int], trees: frozenset[str] = frozenset()) -> None:
        self.pids = pids
        self.trees = trees
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        return {name: s - self._start[name] for name, s in self._now().items()}

    def _now(self) -> dict[str, float]:
        return {name: (tree_cpu_seconds if name in self.trees else cpu_seconds)(pid)
                for name, pid in self.pids.items()}


def per_1000(cpu_s: dict[str, float], readings: int) -> dict[str, float]:
    """CPU seconds per 1,000 readings, by process."""
    return {name: round(1000 * s / readings, 4) for name, s in cpu_s.items()}


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its live children (e.g. a database server's backends)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:  # ppid
            total += (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
    return total
