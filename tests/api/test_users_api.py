"""Users managed through the API by admins: the same store and refusals as the CLI, tokens
retired on every change that should retire them, and never a password hash in a response."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.security.principal import Role
from tests.support.security import PASSWORD, add_user, login, security_api


def _bearer(token_response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_response.json()['access_token']}"}


async def test_admin_adds_changes_and_removes_a_user(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "ada", Role.admin)
        admin = _bearer(await login(client, "ada"))

        added = await client.post("/api/v1/users", headers=admin, json={
            "name": "rui", "role": "responder", "teams": ["drainage-north"],
            "password": "a long enough one"})
        assert added.status_code == 201, added.text
        assert added.json()["teams"] == ["drainage-north"] and "password" not in added.text
        assert (await client.post("/api/v1/users", headers=admin, json={
            "name": "rui", "role": "viewer", "password": "a long enough one"})).status_code == 409

        rui = _bearer(await login(client, "rui", "a long enough one"))
        assert (await client.get("/api/v1/auth/me", headers=rui)).json()["role"] == "responder"
        assert (await client.get("/api/v1/users", headers=rui)).status_code == 403

        promoted = await client.patch("/api/v1/users/rui", headers=admin,
                                      json={"role": "operator", "teams": []})
        assert promoted.status_code == 200 and promoted.json()["role"] == "operator"
        assert (await client.get("/api/v1/auth/me", headers=rui)).status_code == 401  # old role

        rui = _bearer(await login(client, "rui", "a long enough one"))
        changed = await client.put("/api/v1/users/rui/password", headers=admin,
                                   json={"password": "another long one"})
        assert changed.status_code == 204
        assert (await client.get("/api/v1/auth/me", headers=rui)).status_code == 401
        assert (await login(client, "rui", "a long enough one")).status_code == 401

        rui = _bearer(await login(client, "rui", "another long one"))
        disabled = await client.patch("/api/v1/users/rui", headers=admin, json={"disabled": True})
        assert disabled.json()["disabled"] is True
        assert (await client.get("/api/v1/auth/me", headers=rui)).status_code == 401
        await client.patch("/api/v1/users/rui", headers=admin, json={"disabled": False})
        assert (await client.get("/api/v1/auth/me", headers=rui)).status_code == 401  # stays void

        listed = (await client.get("/api/v1/users", headers=admin)).json()
        assert [u["name"] for u in listed] == ["ada", "rui"]
        assert (await client.delete("/api/v1/users/rui", headers=admin)).status_code == 204
        assert (await client.get("/api/v1/users/rui", headers=admin)).status_code == 404
        assert (await client.delete("/api/v1/users/rui", headers=admin)).status_code == 404


async def test_refusals_name_the_field_and_the_reason(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "ada", Role.admin)
        admin = _bearer(await login(client, "ada"))
        cases = [
            {"name": "x", "role": "responder", "password": PASSWORD},  # no team
            {"name": "x", "role": "viewer", "teams": ["t"], "password": PASSWORD},
            {"name": "x", "role": "viewer", "password": "short"},
            {"name": "x", "role": "viewer", "teams": ["a/#"], "password": PASSWORD},
            {"name": "x", "role": "root", "password": PASSWORD},
            {"name": "x", "role": "viewer", "password": PASSWORD, "extra": 1},
            {"name": "op\x8d7", "role": "viewer", "password": PASSWORD},  # a C1 control
        ]
        for body in cases:
            refused = await client.post("/api/v1/users", headers=admin, json=body)
            assert refused.status_code == 422, (body, refused.text)
        teams_alone = await client.patch("/api/v1/users/ada", headers=admin,
                                         json={"teams": ["t"]})
        assert teams_alone.status_code == 422 and "role" in teams_alone.text
        missing = await client.patch("/api/v1/users/nobody", headers=admin,
                                     json={"disabled": True})
        assert missing.status_code == 404 and missing.json()["type"].endswith("unknown-user")


async def test_the_last_enabled_admin_cannot_be_removed_demoted_or_disabled(
    tmp_path: Path,
) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "ada", Role.admin)
        admin = _bearer(await login(client, "ada"))
        for method, path, body in [
            ("DELETE", "/api/v1/users/ada", None),
            ("PATCH", "/api/v1/users/ada", {"disabled": True}),
            ("PATCH", "/api/v1/users/ada", {"role": "viewer", "teams": []}),
        ]:
            refused = await client.request(method, path, headers=admin, json=body)
            assert refused.status_code == 409, refused.text
            assert "last enabled admin" in refused.json()["detail"]
        await add_user(context, "bo", Role.admin)
        assert (await client.delete("/api/v1/users/ada", headers=admin)).status_code == 204
        assert (await client.get("/api/v1/users", headers=admin)).status_code == 401  # gone
