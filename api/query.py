"""Query parameters of the list routes, bounded so SQL never sees an integer it cannot hold
(SQLite and PostgreSQL integers are 64-bit: a larger value is a 422, not a database error) and
no page is larger than `MAX_PAGE` items (a larger ``limit`` is a 422 too).

Time filters are named ``since`` (at or after) and ``until`` (before) on every resource and
take an `api.clock.Instant`; the names a route used before stay as deprecated aliases
(`alias_of`), resolved by `time_range`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException, Query

from api.clock import Instant

SQL_INT_MAX = 2**63 - 1

MAX_PAGE = 1000  # in the OpenAPI document as the limit's maximum, so not a setting

Offset = Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="items to skip")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")]
TIME = "RFC 3339 with a time zone, or epoch ms"
Since = Annotated[Instant | None, Query(description=f"at or after this time ({TIME})")]
Until = Annotated[Instant | None, Query(description=f"before this time ({TIME})")]


def alias_of(name: str) -> Any:
    """A `Query` for a deprecated time parameter that `name` replaces."""
    return Query(deprecated=True, description=f"deprecated: use {name} ({TIME})")


def time_range(
    since: tuple[str, int | None, str, int | None], until: tuple[str, int | None, str, int | None]
) -> tuple[int | None, int | None]:
    """``(since_ms, until_ms)`` from ``(name, value, alias, alias's value)`` of each bound: a
    bound given twice, or an empty range, is a 422 naming the parameters the caller used."""
    (since_name, since_ms), (until_name, until_ms) = _either(*since), _either(*until)
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise HTTPException(422, f"{until_name} must be after {since_name}")
    return since_ms, until_ms


def _either(name: str, value: int | None, alias: str, old: int | None) -> tuple[str, int | None]:
    if value is not None and old is not None:
        raise HTTPException(422, f"give {name} or its deprecated alias {alias}, not both")
    return (name, value) if old is None else (alias, old)
