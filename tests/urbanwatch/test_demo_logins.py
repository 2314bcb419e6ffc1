"""The demo's logins against a real SQLite database: a routed team, fresh secrets each run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.routing import load_routing
from api.security.api_keys import ApiKeyStore
from api.security.principal import Role
from api.security.users import LoginRefusedError, UserStore
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.demo_logins import WALL_KEY_NAME, create_demo_logins, demo_team
from urbanwatch.settings import load_settings

ROUTING = """\
version: 1
handlers:
  - id: works
    name: Public works
    teams: [{id: night-shift, name: Night shift, channels: [{type: mqtt}]}]
policies: [{id: p, ack_deadline_s: {red: 60}, levels: []}]
routes: [{match: {}, handler: works, team: night-shift, policy: p}]
"""


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'uw.db'}"
    await migrate(url)
    engine = create_engine(url)
    yield create_session_factory(engine)
    await engine.dispose()


def test_the_responder_is_on_a_team_the_routing_in_use_sends_incidents_to(tmp_path: Path) -> None:
    shipped = load_settings(None, state_dir=tmp_path)
    assert demo_team(shipped) in {r.team for r in load_routing().routes}
    own = tmp_path / "routing.yaml"
    own.write_text(ROUTING)
    assert demo_team(load_settings(None, state_dir=tmp_path, alerts={"routing_path": own})) == (
        "night-shift")


async def test_each_run_draws_new_passwords_and_a_new_wall_key(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = load_settings(None, state_dir=tmp_path)
    first = await create_demo_logins(settings, sessions)
    second = await create_demo_logins(settings, sessions)
    users, keys = UserStore(sessions), ApiKeyStore(sessions)

    operator = await users.authenticate(second.operator, second.operator_password, 0)
    responder = await users.authenticate(second.responder, second.responder_password, 0)
    assert (operator.role, operator.teams) == (Role.operator, frozenset())
    assert (responder.role, responder.teams) == (Role.responder, {second.responder_team})
    with pytest.raises(LoginRefusedError):
        await users.authenticate(first.operator, first.operator_password, 0)
    assert await keys.authenticate(first.wall_key) is None  # the last run's key is revoked
    wall = await keys.authenticate(second.wall_key)
    assert wall is not None and wall.role is Role.viewer
    assert [k.name for k in await keys.list() if k.revoked_ms is None] == [WALL_KEY_NAME]
