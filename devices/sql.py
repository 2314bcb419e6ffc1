"""The project's one declarative base and naming convention for every SQL table.

It lives in `devices` because every package may import `devices`: the table modules of
`devices`, `alerts` and `api` all declare their rows on `Base`, so `metadata` holds the whole
schema that the Alembic environment in `urbanwatch/migrations` compares and creates. The
naming convention gives every constraint and index a stable name, so migrations written
against it keep matching on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata


TableVersion = tuple[int, ...]


async def table_version(
    session: AsyncSession, table: type[Base], *stamps: InstrumentedAttribute[Any]
) -> TableVersion:
    """The row count of `table` and the sum of each of `stamps` (epoch-ms columns that every
    write sets): it changes whenever a row is added, removed or written, and costs one
    aggregate query, so a poller can ask it often and reload only when it moved."""
    marks = select(func.count(), *(func.coalesce(func.sum(c), 0) for c in stamps))
    return tuple(int(v) for v in (await session.execute(marks.select_from(table))).one())
