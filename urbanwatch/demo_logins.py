"""The demo's logins: an operator, a responder of a routed team, and the wall screen's key.

`urbanwatch demo` prints them with the pages' addresses, so a new user can open the dashboard,
the field page and the wall at once. Each run draws new passwords (the users are created on the
first run and get a new password on the next, which retires the tokens of the last run) and a
new read-only wall key (the last run's is revoked).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.routing import load_routing
from api.security.api_keys import ApiKeyStore
from api.security.principal import Role
from api.security.users import UserStore
from devices.clock import now_ms
from rules.detection import Category, Severity
from urbanwatch.settings import Settings

OPERATOR = "demo-operator"
RESPONDER = "demo-responder"
WALL_KEY_NAME = "demo wall screen"
WALL_KEY_AUTHOR = "urbanwatch demo"
# the responder's team: where the routing in use sends the city's everyday incident
DEMO_INCIDENT = (Category.ENVIRONMENT.value, Severity.YELLOW)


@dataclass(frozen=True)
class DemoLogins:
    operator_password: str
    responder_password: str
    responder_team: str
    wall_key: str
    operator: str = OPERATOR
    responder: str = RESPONDER


def demo_team(settings: Settings) -> str:
    """The team the routing in use sends an everyday (yellow, environment) incident to."""
    category, severity = DEMO_INCIDENT
    return load_routing(settings.alerts.routing_path).route(category, None, severity).team


async def create_demo_logins(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> DemoLogins:
    """The demo users with fresh passwords, and a fresh wall key (the database is migrated)."""
    team = demo_team(settings)
    users = UserStore(sessions)
    passwords = {name: secrets.token_urlsafe(12) for name in (OPERATOR, RESPONDER)}
    await _put_user(users, OPERATOR, Role.operator, [], passwords[OPERATOR])
    await _put_user(users, RESPONDER, Role.responder, [team], passwords[RESPONDER])
    return DemoLogins(
        operator_password=passwords[OPERATOR], responder_password=passwords[RESPONDER],
        responder_team=team, wall_key=await _new_wall_key(ApiKeyStore(sessions)),
    )


async def _put_user(
    users: UserStore, name: str, role: Role, teams: list[str], password: str
) -> None:
    """Add the user, or (on a later run) replace it so its role, teams and password are ours."""
    if await users.get(name) is not None:
        await users.delete(name)
    await users.add(name, role, teams, password, now_ms())


async def _new_wall_key(keys: ApiKeyStore) -> str:
    for old in await keys.list():
        if old.name == WALL_KEY_NAME and old.created_by == WALL_KEY_AUTHOR and not old.revoked_ms:
            await keys.revoke(old.id, now_ms())
    _, key = await keys.create(WALL_KEY_NAME, Role.viewer, [], WALL_KEY_AUTHOR, now_ms())
    return key
