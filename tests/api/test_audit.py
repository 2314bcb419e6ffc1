"""The audit log: every state-changing request after authentication, readable by admins."""

from __future__ import annotations

import time
from pathlib import Path

from alerts.sql import records
from api.security.principal import Role
from tests.support.auth import bearer
from tests.support.security import ADDRESS, add_user, login, security_api

ADMIN = bearer(Role.admin, subject="root")


async def test_changes_and_refusals_are_recorded_with_who_what_where(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, _context):
        before_ms = time.time_ns() // 10**6
        created = await client.post("/api/v1/api-keys", headers=ADMIN,
                                     json={"name": "ops", "role": "operator"})
        key_id = created.json()["id"]
        await client.delete(f"/api/v1/api-keys/{key_id}", headers=ADMIN)
        await client.post("/api/v1/api-keys", headers=bearer(Role.viewer, subject="vera"),
                          json={"name": "x", "role": "viewer"})  # refused: 403
        await client.post("/api/v1/api-keys", headers=ADMIN, json={"role": "viewer"})  # 422
        await client.post("/api/v1/api-keys", json={"name": "x", "role": "viewer"})  # 401
        await client.get("/api/v1/api-keys", headers=ADMIN)  # reads are not recorded

        page = (await client.get("/api/v1/audit", headers=ADMIN)).json()
        got = [(e["actor"], e["action"], e["route"], e["status"], e["address"], e["entity_id"])
               for e in page["items"]]
        assert got == [  # newest first
            ("root", "POST", "/api/v1/api-keys", 422, ADDRESS, "/api/v1/api-keys"),
            ("vera", "POST", "/api/v1/api-keys", 403, ADDRESS, "/api/v1/api-keys"),
            ("root", "DELETE", "/api/v1/api-keys/{key_id}", 200, ADDRESS,
             f"/api/v1/api-keys/{key_id}"),
            ("root", "POST", "/api/v1/api-keys", 201, ADDRESS, "/api/v1/api-keys"),
        ]
        assert page["total"] == 4
        assert all(e["entity"] == "http" and e["ts_ms"] >= before_ms for e in page["items"])


async def test_logins_and_api_key_callers_are_recorded(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        assert (await login(client, "olga")).status_code == 200
        assert (await login(client, "olga", "wrong-password")).status_code == 401
        key = (await client.post("/api/v1/api-keys", headers=ADMIN,
                                 json={"name": "bot", "role": "admin"})).json()
        await client.delete("/api/v1/api-keys/nope", headers={"X-API-Key": key["key"]})
        entries = (await client.get("/api/v1/audit", headers=ADMIN)).json()["items"]
        got = [(e["actor"], e["route"], e["status"]) for e in entries]
        assert got == [
            (f"api-key:{key['id']}", "/api/v1/api-keys/{key_id}", 404),
            ("root", "/api/v1/api-keys", 201),
            ("olga", "/api/v1/auth/token", 401),  # a failed login, under the name it tried
            ("olga", "/api/v1/auth/token", 200),
        ]
        assert entries[2]["action"] == "login_failed" and entries[2]["detail"] == "wrong password"


async def test_filters_and_paging_include_domain_records(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        async with context.sessions.begin() as session:  # what the alert service writes
            await records.audit(session, 1_000, "olga", "acknowledge", "incident", "inc-1")
            await records.audit(session, 2_000, "olga", "expire", "silence", "sil-1")
            await records.audit(session, 3_000, "rita", "acknowledge", "incident", "inc-2")
        for _ in range(3):
            await client.post("/api/v1/api-keys", headers=ADMIN,
                              json={"name": "k", "role": "viewer"})

        async def ids(**params: object) -> list[str]:
            response = await client.get("/api/v1/audit", headers=ADMIN, params=params)
            assert response.status_code == 200, response.text
            return [e["entity_id"] for e in response.json()["items"]]

        assert await ids(actor="olga") == ["sil-1", "inc-1"]
        assert await ids(entity="incident") == ["inc-2", "inc-1"]
        assert await ids(action="acknowledge", actor="rita") == ["inc-2"]
        assert await ids(since_ms=1_500, until_ms=3_000) == ["sil-1"]
        assert await ids(route="/api/v1/api-keys") == ["/api/v1/api-keys"] * 3
        assert await ids(entity="incident", limit=1, offset=1) == ["inc-1"]
        whole = (await client.get("/api/v1/audit", headers=ADMIN, params={"limit": 2})).json()
        assert whole["total"] == 6 and len(whole["items"]) == 2
        domain = (await client.get("/api/v1/audit", headers=ADMIN,
                                   params={"entity_id": "inc-1"})).json()["items"][0]
        assert domain["address"] is None and domain["route"] is None and domain["status"] is None
        for bad in ({"limit": 0}, {"offset": -1}, {"since_ms": "soon"}):
            assert (await client.get("/api/v1/audit", headers=ADMIN,
                                     params=bad)).status_code == 422


async def test_only_admins_read_the_log(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, _context):
        for role in (Role.operator, Role.responder, Role.viewer):
            assert (await client.get("/api/v1/audit",
                                     headers=bearer(role, "t"))).status_code == 403
        assert (await client.get("/api/v1/audit")).status_code == 401
