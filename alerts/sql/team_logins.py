"""Teams' MQTT logins: a team's own system subscribes to ``dispatch/{team}/#`` and nothing else.

A login is issued for a team of the routing file; its password is returned once and only the
Mosquitto `$7$` hash is kept (issuing again replaces it). The broker user is
``urbanwatch.team.<team id>``: the ``urbanwatch.`` prefix is refused for device ids, so a team
can never take a device's name. A team id reaches the broker's ACL file; the routing file
holds only ids of the team grammar (`devices.names`), and the broker-file renderers refuse any
other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.routing import RoutingConfig
from alerts.sql.tables import TeamLoginRow
from devices.clock import now_ms
from devices.credentials import (
    PLATFORM_USER_PREFIX,
    PlatformUser,
    generate_password,
    hash_password,
)
from devices.sql import TableVersion, table_version

TEAM_USER_PREFIX = f"{PLATFORM_USER_PREFIX}team."


@dataclass(frozen=True)
class TeamLogin:
    team_id: str
    username: str
    password: str  # shown once


def team_username(team_id: str) -> str:
    return TEAM_USER_PREFIX + team_id


def dispatch_filter(team_id: str) -> str:
    """What a team's login may read (before the topic prefix)."""
    return f"dispatch/{team_id}/#"


class TeamLogins:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock_ms: Callable[[], int] = now_ms
    ) -> None:
        self._sessions, self._clock_ms = sessions, clock_ms

    async def issue(self, team_id: str, routing: RoutingConfig) -> TeamLogin:
        """A new password for `team_id` (a team of `routing`), replacing any earlier one.

        Raises:
            UnknownTeamError: no such team.
        """
        routing.team(team_id)
        password = generate_password()
        row = {"team_id": team_id, "password_hash": hash_password(password),
               "created_ms": self._clock_ms()}
        async with self._sessions.begin() as session:
            await session.execute(delete(TeamLoginRow).where(TeamLoginRow.team_id == team_id))
            await session.execute(insert(TeamLoginRow), [row])
        return TeamLogin(team_id, team_username(team_id), password)

    async def revoke(self, team_id: str) -> bool:
        """Drop `team_id`'s login (its team was removed); whether it had one."""
        async with self._sessions.begin() as session:
            gone = await session.execute(
                delete(TeamLoginRow).where(TeamLoginRow.team_id == team_id))
        return bool(gone.rowcount)  # type: ignore[attr-defined]

    async def version(self) -> TableVersion:
        """What changes whenever a team login is issued (see `devices.sql.table_version`)."""
        async with self._sessions() as session:
            return await table_version(session, TeamLoginRow, TeamLoginRow.created_ms)

    async def users(self) -> list[PlatformUser]:
        """The broker users of every team login, each reading only its dispatch topics."""
        async with self._sessions() as session:
            rows = (await session.scalars(select(TeamLoginRow).order_by(TeamLoginRow.team_id)))
            return [
                PlatformUser(team_username(r.team_id), r.password_hash,
                             read=(dispatch_filter(r.team_id),))
                for r in rows
            ]
