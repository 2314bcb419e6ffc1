"""Opaque cursors for keyset paging of the fast-changing lists: alerts, incidents, audit.

A page's ``next_cursor`` encodes the sort key of its last item (alerts: started time and id;
incidents: opened time and id; audit: the entry's id, its insertion order) with the list's
name; the next page is the items after that key in the list's order. Items inserted meanwhile
are newer, so they land before the cursor: pages neither shift nor repeat, as offsets would. A
cursor this API did not make, or made for another list, is a 422 with the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Query
from pydantic import Field

Key = tuple[int | str, ...]
T = TypeVar("T")
BAD_CURSOR = "cursor is not one this list gave out: pass next_cursor from its last page"

Cursor = Annotated[str | None, Query(
    max_length=200, description="next_cursor of the previous page (instead of offset)",
)]
NextCursor = Field(description="pass as cursor= to get the page after this one; null on the last")


def encode(resource: str, key: Key) -> str:
    text = json.dumps([resource, *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(resource: str, cursor: str, shape: tuple[type, ...]) -> Any:
    """The key `cursor` holds for `resource`, each part of the type in `shape`; 422 if none."""
    try:
        found = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HTTPException(422, BAD_CURSOR) from None
    if not isinstance(found, list) or found[:1] != [resource] or len(found) != len(shape) + 1:
        raise HTTPException(422, BAD_CURSOR)
    key = tuple(found[1:])
    if not all(_fits(part, kind) for part, kind in zip(key, shape, strict=True)):
        raise HTTPException(422, BAD_CURSOR)
    return key


def _fits(part: object, kind: type) -> bool:
    """Whether `part` is a `kind` that SQL can compare: a 64-bit integer, or text without NUL."""
    if type(part) is not kind:
        return False
    return -(2**63) <= part < 2**63 if isinstance(part, int) else "\x00" not in str(part)


def start_of(resource: str, cursor: str | None, offset: int, shape: tuple[type, ...]) -> Any:
    """Where a page starts: the key of `cursor` (None without one); a cursor with an offset
    is a 422, since the two would disagree."""
    if cursor is None:
        return None
    if offset:
        raise HTTPException(422, "give cursor or offset, not both")
    return decode(resource, cursor, shape)


def page_of(
    resource: str, rows: Sequence[T], limit: int, key: Callable[[T], Key]
) -> tuple[list[T], str | None]:
    """The first `limit` of `rows` (fetched as ``limit + 1`` to tell whether more follow) and
    the cursor of the page after them, None when there is none."""
    page = list(rows[:limit])
    return page, encode(resource, key(page[-1])) if len(rows) > limit else None
