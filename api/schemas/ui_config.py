"""The pages' public settings."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UiConfig(BaseModel):
    timezone: str = Field(description="the city's IANA time zone; pages show times in it")
