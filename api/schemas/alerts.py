"""Alerts: the recorded alerts, with their state and severity history."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from alerts.model import Alert, AlertChange
from api.cursor import NextCursor
from api.schemas.common import epoch_ms_field, iso_twin, severity_name


class AlertPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "al-3f2a9c1e5b7d4a60", "rule_id": "gas-lel", "subject": "gas-0001",
        "category": "safety", "severity": "red", "state": "firing",
        "started_ms": 1795420800000, "updated_ms": 1795420800000,
        "started_at": "2026-11-23T08:00:00.000Z", "updated_at": "2026-11-23T08:00:00.000Z",
        "value": 26.5, "device_id": "gas-0001", "metric": "lel_pct", "district": "dongcheng",
        "grid": "g-1-1", "flapping": False,
    }]})

    id: str
    rule_id: str
    subject: str = Field(description="a device id, or grid:<cell> / district:<name>")
    category: str
    severity: str
    state: str = Field(description="pending, firing, acknowledged, cleared or closed")
    started_ms: int = epoch_ms_field("started_at")
    updated_ms: int = epoch_ms_field("updated_at")
    cleared_ms: int | None = epoch_ms_field("cleared_at", default=None)
    started_at: ClassVar[str] = iso_twin("started_ms")
    updated_at: ClassVar[str] = iso_twin("updated_ms")
    cleared_at: ClassVar[str | None] = iso_twin("cleared_ms", optional=True)
    value: float | None = Field(description="the value that triggered it; null if not a number")
    device_id: str | None = None
    metric: str | None = None
    district: str | None = None
    grid: str | None = None
    flapping: bool

    @classmethod
    def of(cls, row: Alert) -> AlertPublic:
        return cls(
            id=row.id, rule_id=row.rule_id, subject=row.subject, category=row.category,
            severity=severity_name(row.severity), state=row.state, started_ms=row.started_ms,
            updated_ms=row.updated_ms, cleared_ms=row.cleared_ms,
            value=row.value if row.value == row.value else None,  # NaN is no JSON number
            device_id=row.device_id, metric=row.metric, district=row.district, grid=row.grid,
            flapping=row.flapping,
        )


class AlertChangePublic(BaseModel):
    """One history entry; from_state == to_state for a severity-only change."""

    ts_ms: int = epoch_ms_field("at")
    at: ClassVar[str] = iso_twin("ts_ms")
    from_state: str | None
    to_state: str
    severity: str
    actor: str

    @classmethod
    def of(cls, change: AlertChange) -> AlertChangePublic:
        return cls(
            ts_ms=change.ts_ms, from_state=change.from_state, to_state=change.to_state,
            severity=severity_name(change.severity), actor=change.actor,
        )


class AlertDetail(AlertPublic):
    incident_id: str | None = Field(description="the incident holding the alert, if any")
    history: list[AlertChangePublic] = Field(description="state and severity changes, oldest first")


class AlertPage(BaseModel):
    items: list[AlertPublic]
    total: int = Field(description="alerts matching the filters, over all pages")
    limit: int
    offset: int
    next_cursor: str | None = NextCursor
