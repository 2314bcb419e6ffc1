"""The SQL tables of the security model (created by migration 0003, users' token generation
by 0008).

Users, API keys and refresh tokens are this package's own tables. The audit log is the
table `alerts` owns and writes its domain records to; HTTP requests are recorded in it too,
in the columns 0003 added (`address`, `route`, `status`).
All are declared on the project's one base (`devices.sql`). Timestamps are integer epoch
milliseconds.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from alerts.sql.tables import AuditRow
from devices.sql import Base


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    teams: Mapped[list[str]] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # drawn anew to retire every access token issued before (migration 0008)
    token_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    teams: Mapped[list[str]] = mapped_column(JSON)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(128))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        String(128), ForeignKey("users.name", ondelete="CASCADE"), index=True
    )
    created_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)


audit_log = Base.metadata.tables[AuditRow.__tablename__]  # a Table; `__table__` is not
