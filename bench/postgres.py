"""A throwaway PostgreSQL cluster for a benchmark (or a test run): initdb, start, stop, remove.

Debian's PostgreSQL (`apt-get install -y postgresql`) keeps `initdb` and `pg_ctl` off PATH, in
/usr/lib/postgresql/<version>/bin, and `initdb` refuses to run as root: as root the cluster
belongs to the `postgres` user. Trust authentication, 127.0.0.1 only, fsync off: for
measurements and tests, never for data anyone keeps.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from urbanwatch.services.ports import free_port

INSTALL = "apt-get install -y postgresql"


class PostgresError(RuntimeError):
    """The cluster could not be created or started (the message says what to do)."""


def binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise PostgresError(f"PostgreSQL's {name} not found: {INSTALL}")
    return found[-1]


@dataclass(frozen=True)
class Cluster:
    url: str  # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres, the admin's
    folder: Path

    @property
    def pid(self) -> int:
        """The cluster's main process (first line of postmaster.pid)."""
        return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A running cluster in a temporary folder of its own (the postgres user must reach it,
    so not under a private state folder), removed after."""
    initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="urbanwatch-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, port = folder / "data", free_port()
    try:
        _as_postgres([initdb, "-N", "-D", str(data), "-U", "postgres", "--auth=trust"])
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=200")
        _as_postgres([pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w",
                      "start"])
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresError(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}"
                            ) from exc
    try:
        yield Cluster(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", folder)
    finally:
        _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _as_postgres(args: list[str], *, check: bool = True) -> None:
    """Run `args` as the postgres user (when we are root)."""
    as_user = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args
    subprocess.run(as_user, check=check, capture_output=True, timeout=120)
