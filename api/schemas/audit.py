"""The audit log: who changed what, when and from where."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from api.cursor import NextCursor
from api.schemas.common import epoch_ms_field, iso_twin
from api.security.audit_log import AuditEntry


class AuditRecord(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 812, "ts_ms": 1795421100000, "at": "2026-11-23T08:05:00.000Z", "actor": "olga",
        "action": "POST", "entity": "http",
        "entity_id": "/api/v1/incidents/in-8c1d2e3f4a5b6c7d/acknowledge", "detail": "",
        "address": "10.0.4.17", "route": "/api/v1/incidents/{incident_id}/acknowledge",
        "status": 200,
    }]})

    id: int
    ts_ms: int = epoch_ms_field("at")
    at: ClassVar[str] = iso_twin("ts_ms")
    actor: str = Field(description="user name or api-key:<id>, or the system")
    action: str = Field(description="HTTP method, or the domain action (acknowledge, expire …)")
    entity: str = Field(description="'http' for requests, else what changed (incident …)")
    entity_id: str
    detail: str
    address: str | None = Field(None, description="the client's address (requests)")
    route: str | None = Field(None, description="route template (requests)")
    status: int | None = Field(None, description="HTTP status answered (requests)")

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditRecord:
        return cls(**vars(entry))


class AuditPage(BaseModel):
    items: list[AuditRecord]
    total: int = Field(description="entries matching the filters, over all pages")
    limit: int
    offset: int
    next_cursor: str | None = NextCursor
