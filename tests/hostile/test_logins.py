"""Logins that cannot be turned against their owners, and signed notifications that cannot be
replayed: against a running platform, while ingest goes on (`conftest.steady`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from alerts.channels.webhook import signed_headers
from tests.hostile.conftest import GAS, WEBHOOK_SECRET, Hostile
from tests.support.polling import eventually

TOKEN = "/api/v1/auth/token"
FLOOD = 40  # parallel attempts with a wrong password
PER_USER_ADDRESS = 5  # failures of one user from one address before that pair is locked


async def login(http: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await http.post(TOKEN, data={"username": user, "password": password})


def from_address(hostile: Hostile, address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of 127.0.0.0/8 on Linux)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=hostile.api_url, transport=transport, timeout=60)


async def test_a_parallel_login_flood_checks_no_more_passwords_than_the_limit(
    hostile: Hostile,
) -> None:
    async with from_address(hostile, "127.0.0.1") as http:
        answers = await asyncio.gather(*(login(http, "flood", f"guess-{i}") for i in range(FLOOD)))
        statuses = Counter(r.status_code for r in answers)
        assert statuses[401] <= PER_USER_ADDRESS, statuses  # checked: at most the limit
        assert statuses[401] + statuses[429] + statuses[503] == FLOOD, statuses
        assert statuses[429] >= FLOOD - PER_USER_ADDRESS - statuses[503]
        throttled = next(r for r in answers if r.status_code == 429)
        assert int(throttled.headers["Retry-After"]) > 0
        # even the right password waits now, from this address: the pair is locked
        assert (await login(http, "flood", hostile.passwords["flood"])).status_code == 429


async def test_an_attacker_elsewhere_cannot_lock_the_real_user_out(hostile: Hostile) -> None:
    async with from_address(hostile, "127.0.0.2") as attacker:
        tries = await asyncio.gather(*(login(attacker, "lockme", f"nope-{i}")
                                       for i in range(PER_USER_ADDRESS + 1)))
        assert {r.status_code for r in tries} <= {401, 429, 503}
        assert (await login(attacker, "lockme", "nope-again")).status_code == 429
    async with from_address(hostile, "127.0.0.1") as owner:
        mine = await login(owner, "lockme", hostile.passwords["lockme"])
    assert mine.status_code == 200, mine.text
    async with httpx.AsyncClient(base_url=hostile.api_url, headers=hostile.admin) as api:
        audit = (await api.get("/api/v1/audit", params={
            "action": "login_failed", "actor": "lockme", "limit": 100})).json()["items"]
    assert audit and {e["address"] for e in audit} == {"127.0.0.2"}  # on record, from where


async def test_tokens_do_not_outlive_a_password_change(hostile: Hostile) -> None:
    async with httpx.AsyncClient(base_url=hostile.api_url, timeout=30) as http:
        tokens = (await login(http, "changer", hostile.passwords["changer"])).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.get("/api/v1/auth/me", headers=bearer)).status_code == 200
        new_password = hostile.passwords["changer"] + "-new"
        code, output = await asyncio.to_thread(
            hostile.cli, "users", "passwd", "changer", "--password-stdin",
            stdin=new_password + "\n")
        assert code == 0, output
        hostile.passwords["changer"] = new_password
        assert (await http.get("/api/v1/auth/me", headers=bearer)).status_code == 401
        reused = await http.post("/api/v1/auth/refresh",
                                 json={"refresh_token": tokens["refresh_token"]})
        assert reused.status_code == 401
        assert (await login(http, "changer", new_password)).status_code == 200


def publish_gas(hostile: Hostile, lel_pct: float) -> None:
    """One gas reading from the gas detector, with its own login, PUBACKed."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{GAS}-hostile",
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(GAS, hostile.logins[GAS])
    client.connect("127.0.0.1", hostile.mqtt_port)
    client.loop_start()
    try:
        body = json.dumps({"ts": time.time_ns() // 1_000_000, "m": {"lel_pct": lel_pct}})
        client.publish(hostile.topic(GAS), body, qos=1).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


async def test_a_replayed_webhook_is_refused_by_its_id_and_a_stale_one_by_its_timestamp(
    hostile: Hostile,
) -> None:
    hooks = hostile.webhooks
    await asyncio.to_thread(publish_gas, hostile, 64.0)  # 50 % LEL and up: red, dispatched
    await eventually(lambda: bool(hooks.accepted), "the incident's signed webhook")
    headers, body = hooks.accepted[0]
    signed = {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    async with httpx.AsyncClient(timeout=10) as http:
        replay = await http.post(hooks.url, content=body, headers=signed)
        assert replay.status_code == 409  # the same id again
        relabelled = await http.post(hooks.url, content=body,
                                     headers={**signed, "webhook-id": signed["webhook-id"] + "x"})
        assert relabelled.status_code == 401  # the id is under the signature
        fresh = {**signed, "webhook-timestamp": str(int(time.time()))}
        assert (await http.post(hooks.url, content=body, headers=fresh)).status_code == 401
        stale_s = int(time.time()) - 3600  # even correctly signed, an hour-old message is stale
        stale = signed_headers(WEBHOOK_SECRET, "replayed-later", stale_s, body)
        assert (await http.post(hooks.url, content=body, headers=stale)).status_code == 401
    assert hooks.refused == [409, 401, 401, 401]
    assert len(hooks.accepted) >= 1
