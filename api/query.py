"""Query parameters of the list routes, bounded so SQL never sees an integer it cannot hold
(SQLite and PostgreSQL integers are 64-bit: a larger value is a 422, not a database error) and
no page is larger than `MAX_PAGE` items (a larger ``limit`` is a 422 too)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

SQL_INT_MAX = 2**63 - 1

MAX_PAGE = 1000  # in the OpenAPI document as the limit's maximum, so not a setting

Offset = Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="items to skip")]


def epoch_ms_bound(description: str) -> Any:
    """A `Query` for an optional epoch-milliseconds bound."""
    return Query(ge=0, le=SQL_INT_MAX, description=f"{description} (epoch ms)")
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")]
