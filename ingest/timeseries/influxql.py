"""Every InfluxQL statement the platform sends, built from escaped parts.

Identifiers go through `quote_ident` and string literals through `quote_literal`, so no
name can close its quote or inject a statement; numbers are formatted from ints; time
intervals and durations are checked against a strict pattern first. The schema: one
measurement per device type, tags ``device_id``/``district``/``grid``, one field per
metric (see `ingest.timeseries.lineprotocol`), in the default ``raw`` retention policy
with 1-minute means in ``downsampled``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RAW_RP = "raw"
DOWNSAMPLED_RP = "downsampled"
DOWNSAMPLE_CQ = "downsample_1m"
AGGREGATES = frozenset({"mean", "min", "max", "median", "sum", "count", "last", "first"})
SHOW_CONTINUOUS_QUERIES = "SHOW CONTINUOUS QUERIES"

_EVERY = re.compile(r"^[1-9][0-9]{0,5}(s|m|h|d)$")
_DURATION = re.compile(r"^(\d+(ns|u|µ|ms|s|m|h|d|w))+$|^INF$")
# InfluxQL's scanner reads \\ \" \' \n inside quotes and refuses a raw newline there.
_QUOTED_ESCAPES = {"\\": "\\\\", "\n": "\\n", '"': '\\"', "'": "\\'"}


def _quoted(text: str, quote: str) -> str:
    return quote + "".join(_QUOTED_ESCAPES.get(c, c) for c in text) + quote


def quote_ident(name: str) -> str:
    """An identifier (measurement, field, tag key, database) in double quotes."""
    return _quoted(name, '"')


def quote_literal(text: str) -> str:
    """A string literal (a tag value to compare with) in single quotes."""
    return _quoted(text, "'")


def valid_every(every: str) -> bool:
    """An InfluxQL GROUP BY time() interval we accept: a positive count and s/m/h/d."""
    return bool(_EVERY.match(every))


def _time_range(start_ms: int, end_ms: int) -> str:
    return f"time >= {int(start_ms)}ms AND time < {int(end_ms)}ms"


def history(
    measurement: str, device_id: str, metric: str, start_ms: int, end_ms: int, *,
    every: str | None, aggregate: str, limit: int,
) -> str:
    """One device's metric in [start, end): raw points, or `aggregate` per `every` window."""
    if every is not None and not valid_every(every):
        raise ValueError(f"invalid interval {every!r}: use e.g. 30s, 5m, 1h, 1d")
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}")
    field = quote_ident(metric)
    select = f"{aggregate}({field})" if every else field
    q = (f"SELECT {select} FROM {quote_ident(measurement)} "
         f"WHERE device_id = {quote_literal(device_id)} AND {_time_range(start_ms, end_ms)}")
    if every:
        q += f" GROUP BY time({every}) fill(none)"
    return q + f" LIMIT {int(limit)}"


def latest(measurement: str, device_id: str, metric: str) -> str:
    """The newest value of one device's metric (a selector: the row keeps its own time)."""
    return (f"SELECT last({quote_ident(metric)}) FROM {quote_ident(measurement)} "
            f"WHERE device_id = {quote_literal(device_id)}")


def last_per_device(measurement: str, metric: str, limit: int, offset: int) -> str:
    """The newest value of ``metric`` of every device of ``measurement``, with its time, one
    series per device; ``limit``/``offset`` page through the devices (SLIMIT/SOFFSET)."""
    return (f"SELECT last({quote_ident(metric)}) FROM {quote_ident(measurement)} "
            f'GROUP BY "device_id" SLIMIT {int(limit)} SOFFSET {int(offset)}')


def readings(
    measurement: str, metrics: Iterable[str], device_ids: Iterable[str] | None,
    start_ms: int, end_ms: int,
) -> str:
    """Raw `metrics` of one measurement in [start, end), grouped by ``device_id``.

    `device_ids` of None reads every device of the measurement.
    """
    fields = ", ".join(quote_ident(m) for m in metrics)
    q = f"SELECT {fields} FROM {quote_ident(measurement)} WHERE "
    if device_ids is not None:
        named = " OR ".join(f"\"device_id\" = {quote_literal(d)}" for d in device_ids)
        q += f"({named}) AND "
    return q + f'{_time_range(start_ms, end_ms)} GROUP BY "device_id"'


def count(measurement: str | None = None, since_ms: int | None = None) -> str:
    """Per-field point counts of one measurement, or of all (default retention policy); only
    points at or after ``since_ms`` when given."""
    source = quote_ident(measurement) if measurement is not None else "/.*/"
    where = "" if since_ms is None else f" WHERE time >= {int(since_ms)}ms"
    return f"SELECT count(*) FROM {source}{where}"


def create_database(database: str) -> str:
    return f"CREATE DATABASE {quote_ident(database)}"


def create_admin_user(username: str, password: str) -> str:
    """The first admin user of a server with authentication on (allowed without a login)."""
    return (f"CREATE USER {quote_ident(username)} WITH PASSWORD {quote_literal(password)} "
            "WITH ALL PRIVILEGES")


def drop_database(database: str) -> str:
    return f"DROP DATABASE {quote_ident(database)}"


def show_retention_policies(database: str) -> str:
    return f"SHOW RETENTION POLICIES ON {quote_ident(database)}"


def check_duration(duration: str) -> None:
    """Refuse (ValueError) anything but an InfluxQL duration literal such as 30d or INF."""
    if not _DURATION.match(duration):
        raise ValueError(f"invalid InfluxQL duration {duration!r}")


def retention_policy(database: str, name: str, duration: str, *, exists: bool,
                     default: bool) -> str:
    """CREATE (or, if it `exists`, ALTER) a retention policy keeping data for `duration`."""
    check_duration(duration)
    verb, replication = ("ALTER", "") if exists else ("CREATE", " REPLICATION 1")
    return (f"{verb} RETENTION POLICY {quote_ident(name)} ON {quote_ident(database)} "
            f"DURATION {duration}{replication}{' DEFAULT' if default else ''}")


def downsample_continuous_query(database: str) -> str:
    """1-minute means of every field of every measurement, from ``raw`` to ``downsampled``."""
    db = quote_ident(database)
    return (f"CREATE CONTINUOUS QUERY {quote_ident(DOWNSAMPLE_CQ)} ON {db} BEGIN "
            f"SELECT mean(*) INTO {db}.{quote_ident(DOWNSAMPLED_RP)}.:MEASUREMENT "
            f"FROM {db}.{quote_ident(RAW_RP)}./.*/ GROUP BY time(1m), * END")
