"""The SQL tables of `alerts` (SQLAlchemy 2; SQLite or PostgreSQL).

The tables are declared on the project's one base (`devices.sql`); the Alembic environment in
`urbanwatch/migrations` creates them (revision 0002). Timestamps are integer epoch milliseconds.
Histories and timelines are append-only child tables; the outbox holds every notification ever
planned, each with its idempotency key, so a crash neither loses nor doubles a dispatch.
Reading and writing the domain values lives in `alerts.sql.repository`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from devices.sql import Base


class AlertRow(Base):
    __tablename__ = "alerts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    subject: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    started_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    cleared_ms: Mapped[int | None] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Double)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    metric: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64))
    grid: Mapped[str | None] = mapped_column(String(64))
    flapping: Mapped[bool] = mapped_column(Boolean)
    notified: Mapped[bool] = mapped_column(Boolean)


class AlertChangeRow(Base):
    __tablename__ = "alert_history"
    __table_args__ = (UniqueConstraint("alert_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    members: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    opened_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    last_alert_ms: Mapped[int] = mapped_column(BigInteger)
    handler_id: Mapped[str | None] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(64), index=True)
    policy_id: Mapped[str | None] = mapped_column(String(64))
    escalation_level: Mapped[int] = mapped_column(Integer)
    dispatched_ms: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_ms: Mapped[int | None] = mapped_column(BigInteger)
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger)
    escalated_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_notified_ms: Mapped[int | None] = mapped_column(BigInteger)


class TimelineRow(Base):
    """Ordered by `id`: the service and the dispatcher both append (dispatch attempts)."""

    __tablename__ = "incident_timeline"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)


class SilenceRow(Base):
    __tablename__ = "silences"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    starts_ms: Mapped[int] = mapped_column(BigInteger)
    ends_ms: Mapped[int | None] = mapped_column(BigInteger)
    author: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    weekly: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    expired_ms: Mapped[int | None] = mapped_column(BigInteger, index=True)


class HandlerRow(Base):
    """A snapshot of the routing file's handlers, rewritten whenever routing is (re)loaded."""

    __tablename__ = "handlers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    districts: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    teams: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(Base):
    """One notification to one channel of one team; `key` is its idempotency key."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("key", "channel"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))  # e.g. "webhook", "mqtt"
    target: Mapped[str] = mapped_column(String(500))  # URL or topic
    secret_env: Mapped[str | None] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    created_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    claimed_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    give_up_ms: Mapped[int | None] = mapped_column(BigInteger)
    done_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    digest_key: Mapped[str | None] = mapped_column(String(200), index=True)


class AuditRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))  # client of an API request
    route: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[int | None] = mapped_column(Integer)


class TeamLoginRow(Base):
    """A team's MQTT login for reading its dispatch topics (revision 0006): only the hash."""

    __tablename__ = "team_logins"
    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_ms: Mapped[int] = mapped_column(BigInteger)


class LiveEventRow(Base):
    """One live stream event (`alerts.sql.live_backlog`): `id` is the event's id on the wire,
    never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL)."""

    __tablename__ = "live_events"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stored_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
