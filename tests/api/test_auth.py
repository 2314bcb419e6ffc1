"""Logging in, refreshing and expiring tokens, throttling, failed logins in the audit log, and
tokens retired at once by a new password, disabling or deleting a user, through the real app
and SQLite."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from api.security.principal import Principal, Role
from api.security.refresh import InvalidRefreshTokenError, RefreshTokens
from api.security.tokens import issue_access_token
from api.security.users import UserStore
from tests.support.auth import SECRET
from tests.support.security import (
    ADDRESS,
    PASSWORD,
    add_user,
    from_address,
    login,
    security_api,
)
from urbanwatch.cli.app import app as cli


async def test_login_issues_a_short_lived_token_for_the_users_role(tmp_path: Path) -> None:
    async with security_api(tmp_path, access_ttl_s=600) as (client, context):
        await add_user(context, "rita", Role.responder, "team-a", "team-b")
        response = await login(client, "rita")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 600
        claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
        assert claims["exp"] - claims["iat"] == 600
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert me.json() == {"subject": "rita", "role": "responder",
                             "teams": ["team-a", "team-b"], "kind": "user"}


async def test_wrong_password_and_unknown_user_look_the_same(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        wrong = await login(client, "olga", "not the password")
        unknown = await login(client, "nobody", PASSWORD)
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert wrong.json()["detail"] == "invalid username or password"
        assert wrong.headers["www-authenticate"] == "Bearer"
        missing = await client.post("/api/v1/auth/token", data={"username": "olga"})
        assert missing.status_code == 422  # the form needs a password


async def test_refresh_rotates_and_each_token_works_once(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "vic", Role.viewer)
        first = (await login(client, "vic")).json()
        second = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert second.status_code == 200, second.text
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
        )
        assert me.json()["subject"] == "vic"

        reused = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reused.status_code == 401 and "already used" in reused.json()["detail"]
        # a reused token means it leaked: the newer one dies with it
        newer = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        )
        assert newer.status_code == 401

        bogus = await client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
        assert bogus.status_code == 401 and "unknown" in bogus.json()["detail"]
        empty = await client.post("/api/v1/auth/refresh", json={})
        assert empty.status_code == 422


async def test_refresh_token_expires(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (_client, context):
        await add_user(context, "vic", Role.viewer)
        tokens = RefreshTokens(context.sessions)
        token = await tokens.issue("vic", now_ms=1_000_000, ttl_s=60)
        with pytest.raises(InvalidRefreshTokenError, match="expired"):
            await tokens.redeem(token, now_ms=1_060_000)
        fresh = await tokens.issue("vic", now_ms=1_000_000, ttl_s=60)
        assert await tokens.redeem(fresh, now_ms=1_059_999) == "vic"


async def test_expired_or_forged_access_token_is_401(tmp_path: Path) -> None:
    principal = Principal("olga", Role.operator)
    expired = issue_access_token(principal, SECRET, int(time.time()) - 3600, ttl_s=900)
    forged = issue_access_token(principal, "another-secret-" + "y" * 32, int(time.time()), 900)
    async with security_api(tmp_path) as (client, _context):
        for token, reason in ((expired, "expired"), (forged, "Signature")):
            response = await client.get(
                "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401 and reason in response.json()["detail"]
        anonymous = await client.get("/api/v1/auth/me")
        assert anonymous.status_code == 401 and "not authenticated" in anonymous.json()["detail"]


async def test_failed_logins_lock_the_user_at_that_address_only(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        for _ in range(5):
            assert (await login(client, "olga", "guess-guess")).status_code == 401
        locked = await login(client, "olga")  # even the right password waits here
        assert locked.status_code == 429
        assert 0 < int(locked.headers["retry-after"]) <= 300
        assert "too many failed logins" in locked.json()["detail"]
        assert context.login_throttle.per_address.retry_after(ADDRESS, time.time()) == 0
        async with from_address(client, "198.51.100.9") as elsewhere:
            assert (await login(elsewhere, "olga")).status_code == 200  # the owner is not


async def test_a_parallel_burst_cannot_pass_the_limit(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        checked_before = context.passwords.verified
        answers = await asyncio.gather(*(login(client, "olga", f"guess {i:04}") for i in range(30)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [401] * 5 + [429] * 25
        assert context.passwords.verified - checked_before == 5  # only 5 passwords were tried
        async with from_address(client, "198.51.100.9") as elsewhere:
            assert (await login(elsewhere, "olga")).status_code == 200


async def test_failed_logins_are_in_the_audit_log_without_the_password(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        await add_user(context, "root", Role.admin)
        assert (await login(client, "olga", "guess-guess-1")).status_code == 401
        assert (await login(client, "nobody", "guess-guess-2")).status_code == 401
        await UserStore(context.sessions).set_disabled("olga", True, 0)
        assert (await login(client, "olga")).status_code == 401
        admin = {"Authorization": f"Bearer {(await login(client, 'root')).json()['access_token']}"}
        page = await client.get("/api/v1/audit", params={"action": "login_failed"}, headers=admin)
        assert page.status_code == 200, page.text
        entries = page.json()["items"]
        assert [(e["actor"], e["detail"], e["address"], e["status"]) for e in entries] == [
            ("olga", "user disabled", ADDRESS, 401),
            ("nobody", "unknown user", ADDRESS, 401),
            ("olga", "wrong password", ADDRESS, 401),
        ]
        assert "guess-guess" not in page.text and PASSWORD not in page.text


async def test_failed_logins_are_throttled_per_address(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        for i in range(20):  # spread over names, so no single user is locked
            assert (await login(client, f"user{i}", "guess-guess")).status_code == 401
        assert (await login(client, "olga")).status_code == 429
    async with security_api(tmp_path / "other", address="198.51.100.1") as (client, context):
        await add_user(context, "olga", Role.operator)
        assert (await login(client, "olga")).status_code == 200


async def test_a_successful_login_clears_the_users_failures(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        for _ in range(4):
            await login(client, "olga", "guess-guess")
        assert (await login(client, "olga")).status_code == 200
        for _ in range(4):
            assert (await login(client, "olga", "guess-guess")).status_code == 401
        assert (await login(client, "olga")).status_code == 200


async def test_a_disabled_user_can_neither_log_in_nor_refresh(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        refresh_token = (await login(client, "olga")).json()["refresh_token"]
        await UserStore(context.sessions).set_disabled("olga", True, 0)
        refused = await login(client, "olga")
        assert refused.status_code == 401
        assert refused.json()["detail"] == "invalid username or password"
        refreshed = await client.post("/api/v1/auth/refresh",
                                      json={"refresh_token": refresh_token})
        assert refreshed.status_code == 401 and "revoked" in refreshed.json()["detail"]


async def test_a_disabled_users_access_token_is_refused_at_once(tmp_path: Path) -> None:
    async def users(command: str, name: str) -> None:  # the CLI, on the API's database
        args = ["users", command, name, "--state-dir", str(tmp_path),
                "--db-url", f"sqlite+aiosqlite:///{tmp_path / 'security.db'}"]
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        assert result.exit_code == 0, result.output

    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        await add_user(context, "vic", Role.viewer)
        olga, vic = [
            {"Authorization": f"Bearer {(await login(client, name)).json()['access_token']}"}
            for name in ("olga", "vic")
        ]
        assert (await client.get("/api/v1/auth/me", headers=olga)).status_code == 200

        await users("disable", "olga")
        refused = await client.get("/api/v1/auth/me", headers=olga)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["detail"] == "invalid token: the user is disabled"
        assert (await client.get("/api/v1/auth/me", headers=vic)).status_code == 200

        await users("enable", "olga")  # a new login works; the old token stays retired
        assert (await client.get("/api/v1/auth/me", headers=olga)).status_code == 401
        assert (await login(client, "olga")).status_code == 200


async def _tokens_of(client: httpx.AsyncClient, name: str) -> tuple[dict[str, str], str]:
    issued = (await login(client, name)).json()
    return {"Authorization": f"Bearer {issued['access_token']}"}, issued["refresh_token"]


async def _refreshes(client: httpx.AsyncClient, refresh_token: str) -> int:
    answer = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    return answer.status_code


async def test_a_new_password_retires_every_token_the_user_held(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        await add_user(context, "vic", Role.viewer)
        olga, olga_refresh = await _tokens_of(client, "olga")
        vic, vic_refresh = await _tokens_of(client, "vic")
        await UserStore(context.sessions).set_password("olga", "a new password", 0)
        refused = await client.get("/api/v1/auth/me", headers=olga)
        assert refused.status_code == 401 and "password changed" in refused.json()["detail"]
        assert await _refreshes(client, olga_refresh) == 401
        assert (await client.get("/api/v1/auth/me", headers=vic)).status_code == 200
        assert await _refreshes(client, vic_refresh) == 200
        assert (await login(client, "olga", "a new password")).status_code == 200


async def test_a_deleted_users_tokens_stop_working(tmp_path: Path) -> None:
    async with security_api(tmp_path) as (client, context):
        await add_user(context, "olga", Role.operator)
        olga, olga_refresh = await _tokens_of(client, "olga")
        await UserStore(context.sessions).delete("olga")
        refused = await client.get("/api/v1/auth/me", headers=olga)
        assert refused.status_code == 401 and "no longer exists" in refused.json()["detail"]
        assert await _refreshes(client, olga_refresh) == 401
        await add_user(context, "olga", Role.admin)  # the same name, someone new
        assert (await client.get("/api/v1/auth/me", headers=olga)).status_code == 401
