"""Request bodies above the limit are a 413 before authentication, over a real server (uvicorn):
a declared length is refused without reading the body, a chunked body is cut off at the limit,
and the device import has its own, larger limit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.context import BodyLimits
from api.routes.devices import IMPORT_PATH
from api.security.principal import Role
from tests.api.conftest import World, serve
from tests.support.auth import bearer

BODY_BYTES, IMPORT_BYTES = 8192, 32768
VALIDATE = "/api/v1/rules/validate"


@pytest.fixture
async def limited(world: World) -> AsyncIterator[str]:
    context = dataclasses.replace(world.context, body_limits=BodyLimits(BODY_BYTES, IMPORT_BYTES))
    async with serve(create_app(context)) as url:
        yield url


async def test_an_oversized_body_is_413_before_the_login_is_asked_for(limited: str) -> None:
    async with httpx.AsyncClient(base_url=limited) as http:
        response = await http.post(VALIDATE, json={"text": "x" * BODY_BYTES})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        f"the request body is larger than {BODY_BYTES} bytes, this server's limit; send less"
    )


async def test_a_body_within_the_limit_reaches_the_route(limited: str) -> None:
    async with httpx.AsyncClient(base_url=limited) as http:
        anonymous = await http.post(VALIDATE, json={"text": "[]"})
        operator = await http.post(VALIDATE, json={"text": "[]"}, headers=bearer(Role.operator))
    assert anonymous.status_code == 401
    assert operator.status_code == 200, operator.text


async def test_a_chunked_body_is_cut_off_at_the_limit(limited: str) -> None:
    """The body never ends, yet the answer comes: the server stopped reading at the limit."""
    address = urlsplit(limited)
    assert address.hostname and address.port
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(f"POST {VALIDATE} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b'{"text": "' + b"x" * 1000
    for _ in range(BODY_BYTES // len(chunk) + 1):
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()
    status_line = await reader.readline()
    head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert "content-type: application/problem+json" in head


async def test_the_device_import_has_its_own_larger_limit(limited: str) -> None:
    csv = b"id,type,district,lat,lon\n" + b"#" * (IMPORT_BYTES // 2)
    headers = {"content-type": "text/csv"}
    async with httpx.AsyncClient(base_url=limited) as http:
        within = await http.post(IMPORT_PATH, content=csv, headers=headers)
        beyond = await http.post(IMPORT_PATH, content=csv * 2, headers=headers)
    assert within.status_code == 401  # past the body limit: now the login is asked for
    assert beyond.status_code == 413
    assert str(IMPORT_BYTES) in beyond.json()["detail"]


async def test_a_body_that_trickles_in_is_408_before_the_login_is_asked_for(
    world: World,
) -> None:
    context = dataclasses.replace(world.context, body_limits=BodyLimits(read_timeout_s=0.5))
    async with serve(create_app(context)) as url:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(b"POST " + VALIDATE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te")
        await writer.drain()  # ... and the other 96 bytes never come
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
