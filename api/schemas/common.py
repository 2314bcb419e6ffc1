"""What the models of several resources share: the request-body base and severity names."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from rules.detection import Severity

SeverityName = Literal["info", "blue", "yellow", "orange", "red"]


def severity_name(level: int) -> SeverityName:
    name: SeverityName = Severity(level).name.lower()  # type: ignore[assignment]
    return name


class RequestBody(BaseModel):
    """A request body: no text in it may hold NUL, which PostgreSQL text cannot store (it
    would fail there as a database error, a 500)."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("NUL characters are not allowed")
        return value


class StrictRequestBody(RequestBody):
    """A request body that refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")
