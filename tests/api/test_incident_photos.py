"""Photos from the scene on an incident's timeline: stored 0600 under the state folder, served
back to whoever sees the incident, refused when too large or not an image (nothing written)."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from api.security.principal import Role
from tests.api.conftest import FLOOD_TEAM, GAS_TEAM, PHOTO_BYTES, World
from tests.support.auth import bearer
from tests.support.route_world import JPEG

GAS = bearer(Role.responder, GAS_TEAM, subject="ana")
FLOOD = bearer(Role.responder, FLOOD_TEAM, subject="bo")
VIEWER = bearer(Role.viewer, subject="vic")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)


def photos_folder(world: World) -> Path:
    assert world.context.photos is not None
    return world.context.photos.folder


async def upload(client: httpx.AsyncClient, incident: str, headers: dict[str, str],
                 content_type: str, body: bytes) -> httpx.Response:  # fmt: skip
    return await client.post(f"/api/v1/incidents/{incident}/photos", content=body,
                             headers={**headers, "Content-Type": content_type})  # fmt: skip


@pytest.mark.parametrize(("content_type", "body"), [
    ("image/jpeg", JPEG), ("image/png", PNG), ("image/webp; q=1", WEBP)],
    ids=["jpeg", "png", "webp"])  # fmt: skip
async def test_a_responder_adds_a_photo_that_their_team_and_the_center_see(
    client: httpx.AsyncClient, world: World, content_type: str, body: bytes
) -> None:
    gas = world.incident_of[GAS_TEAM]
    added = await upload(client, gas, GAS, content_type, body)
    assert added.status_code == 200, added.text
    entry = added.json()["timeline"][-1]
    assert (entry["kind"], entry["actor"]) == ("photo", "ana")
    name = entry["detail"]
    stored = photos_folder(world) / gas / name
    assert stored.read_bytes() == body
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    for who in (GAS, VIEWER):
        shown = await client.get(f"/api/v1/incidents/{gas}/photos/{name}", headers=who)
        assert shown.status_code == 200
        assert shown.content == body
        assert shown.headers["content-type"] == content_type.split(";")[0]
        assert shown.headers["x-content-type-options"] == "nosniff"
    hidden = await client.get(f"/api/v1/incidents/{gas}/photos/{name}", headers=FLOOD)
    assert hidden.status_code == 404


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("image/jpeg", JPEG + bytes(PHOTO_BYTES), 413),
    ("image/gif", b"GIF89a" + bytes(16), 415),
    ("text/html", b"<script>alert(1)</script>", 415),
    ("image/jpeg", PNG, 415),  # says JPEG, is not
    ("image/webp", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(16), 415),
    ("image/png", b"", 415),
], ids=["too-large", "gif", "html", "png-as-jpeg", "riff-not-webp", "empty"])  # fmt: skip
async def test_what_is_not_a_photo_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, world: World, content_type: str, body: bytes, status: int
) -> None:
    gas = world.incident_of[GAS_TEAM]
    before = (await client.get(f"/api/v1/incidents/{gas}", headers=GAS)).json()["timeline"]
    refused = await upload(client, gas, GAS, content_type, body)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"]
    after = (await client.get(f"/api/v1/incidents/{gas}", headers=GAS)).json()["timeline"]
    assert after == before
    assert not any(photos_folder(world).glob("**/ph-*"))


async def test_another_team_cannot_add_or_guess_photos(
    client: httpx.AsyncClient, world: World
) -> None:
    gas = world.incident_of[GAS_TEAM]
    assert (await upload(client, gas, FLOOD, "image/jpeg", JPEG)).status_code == 404
    assert (await upload(client, gas, VIEWER, "image/jpeg", JPEG)).status_code == 403
    assert (await upload(client, "in-nope", GAS, "image/jpeg", JPEG)).status_code == 404
    for name in ("ph-" + "0" * 32 + ".jpg", "..%2F..%2Fapi.db", "ph-x.jpg"):
        missing = await client.get(f"/api/v1/incidents/{gas}/photos/{name}", headers=GAS)
        assert missing.status_code == 404, name
    assert not any(photos_folder(world).glob("**/ph-*"))
