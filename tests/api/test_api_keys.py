"""API keys: created by admins and shown once, stored hashed, scoped to a role, revocable."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from api.security.principal import Role
from api.security.store import ApiKeyRow
from tests.support.auth import bearer
from tests.support.security import security_api

ADMIN = bearer(Role.admin, subject="root")


async def test_create_use_list_revoke(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        created = await client.post(
            "/api/v1/api-keys", headers=ADMIN,
            json={"name": "field app", "role": "responder", "teams": ["team-a"]},
        )
        assert created.status_code == 201, created.text
        record = created.json()
        key = record["key"]
        assert key.startswith(f"uw_{record['prefix']}_")
        assert record["role"] == "responder" and record["teams"] == ["team-a"]
        assert record["created_by"] == "root" and record["revoked_ms"] is None

        async with context.sessions() as session:
            row = (await session.scalars(select(ApiKeyRow))).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in str(
            vars(row))

        me = await client.get("/api/v1/auth/me", headers={"X-API-Key": key})
        assert me.status_code == 200
        assert me.json() == {"subject": f"api-key:{record['id']}", "role": "responder",
                             "teams": ["team-a"], "kind": "api_key"}
        not_admin = await client.get("/api/v1/api-keys", headers={"X-API-Key": key})
        assert not_admin.status_code == 403  # the key's role, not more

        listed = (await client.get("/api/v1/api-keys", headers=ADMIN)).json()
        assert [k["id"] for k in listed] == [record["id"]]
        assert "key" not in listed[0]  # shown once only

        revoked = await client.delete(f"/api/v1/api-keys/{record['id']}", headers=ADMIN)
        assert revoked.status_code == 200 and revoked.json()["revoked_ms"] is not None
        after = await client.get("/api/v1/auth/me", headers={"X-API-Key": key})
        assert after.status_code == 401 and "revoked" in after.json()["detail"]
        again = await client.delete(f"/api/v1/api-keys/{record['id']}", headers=ADMIN)
        assert again.json()["revoked_ms"] == revoked.json()["revoked_ms"]
        missing = await client.delete("/api/v1/api-keys/nope", headers=ADMIN)
        assert missing.status_code == 404


async def test_wrong_or_malformed_keys_are_401(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, _context):
        key = (await client.post("/api/v1/api-keys", headers=ADMIN,
                                 json={"name": "ops", "role": "operator"})).json()["key"]
        tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        for bad in (tampered, "uw_", "uw_abc", "not-a-key", ""):
            response = await client.get("/api/v1/auth/me", headers={"X-API-Key": bad})
            assert response.status_code == 401, bad
        ok = await client.get("/api/v1/auth/me", headers={"X-API-Key": key})
        assert ok.json()["role"] == "operator"


async def test_only_admins_manage_keys_and_scopes_must_fit(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, _context):
        body = {"name": "x", "role": "viewer"}
        for role in (Role.operator, Role.responder, Role.viewer):
            response = await client.post("/api/v1/api-keys", headers=bearer(role, "t"), json=body)
            assert response.status_code == 403
        assert (await client.post("/api/v1/api-keys", json=body)).status_code == 401
        for bad, reason in (
            ({"name": "x", "role": "responder"}, "at least one team"),
            ({"name": "x", "role": "viewer", "teams": ["t"]}, "only responders"),
        ):
            response = await client.post("/api/v1/api-keys", headers=ADMIN, json=bad)
            assert response.status_code == 422
            [problem] = response.json()["detail"]
            assert problem["loc"] == ["body", "teams"] and reason in problem["msg"]
        for bad in ({"name": "", "role": "viewer"}, {"name": "x", "role": "king"}, {}):
            response = await client.post("/api/v1/api-keys", headers=ADMIN, json=bad)
            assert response.status_code == 422 and isinstance(response.json()["detail"], list)
