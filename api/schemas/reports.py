"""Reports: MTTA, MTTR, SLA breaches and escalations per team, category or severity."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from alerts.decisions.reports import GroupBy, ReportRow
from api.schemas.common import epoch_ms_field, iso_twin


class ReportRowPublic(BaseModel):
    key: str = Field(description="the team id, category or severity of this row")
    incidents: int
    acknowledged: int
    resolved: int
    mtta_s: float | None = Field(description="mean time to acknowledge; null if none was")
    mttr_s: float | None = Field(description="mean time to resolve; null if none was")
    sla_breaches: int
    escalations: int

    @classmethod
    def of(cls, row: ReportRow) -> ReportRowPublic:
        return cls(
            key=row.key, incidents=row.incidents, acknowledged=row.acknowledged,
            resolved=row.resolved,
            mtta_s=None if row.mtta_ms is None else row.mtta_ms / 1000,
            mttr_s=None if row.mttr_ms is None else row.mttr_ms / 1000,
            sla_breaches=row.sla_breaches, escalations=row.escalations,
        )


class Report(BaseModel):
    start_ms: int = epoch_ms_field("since")
    end_ms: int = epoch_ms_field("until")
    since: ClassVar[str] = iso_twin("start_ms")
    until: ClassVar[str] = iso_twin("end_ms")
    group_by: GroupBy
    policy_id: str = Field(description="the escalation policy whose deadlines are the SLA")
    rows: list[ReportRowPublic]
