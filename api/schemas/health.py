"""Liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, degraded (ready, but a dependency the platform "
                        "rides out is down: see `degraded`) or not ready")
    checks: dict[str, bool]
    degraded: list[str] = Field(default_factory=list,
                                description="the dependencies down that only degrade the service")
