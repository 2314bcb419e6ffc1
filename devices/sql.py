"""The project's one declarative base and naming convention for every SQL table.

It lives in `devices` because every package may import `devices`: the table modules of
`devices`, `alerts` and `api` all declare their rows on `Base`, so `metadata` holds the whole
schema that the Alembic environment in `urbanwatch/migrations` compares and creates. The
naming convention gives every constraint and index a stable name, so migrations written
against it keep matching on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

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
