"""Conditional GETs (RFC 9110 §8.8.3, §13.1.2): large, rarely changing bodies (the map's devices
and areas) carry an ETag and `Cache-Control: no-cache`, so a browser asks again every time
but gets a bodyless 304 while what it holds is current."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import Response

REVALIDATE = {"Cache-Control": "private, no-cache"}


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, or ``*``)."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, **REVALIDATE})


def tagged_json(body: bytes, etag: str) -> Response:
    return Response(body, media_type="application/json", headers={"ETag": etag, **REVALIDATE})


@dataclass
class TaggedBody:
    """The last body built and its ETag: built again only when the ETag moves."""

    etag: str = ""
    body: bytes = b""
