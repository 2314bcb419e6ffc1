"""What the models of several resources share: the request-body base, severity names and
timestamps (RFC 3339 fields, each beside the epoch-ms field it shows, see `api.clock`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from api.clock import EXAMPLE, iso_time
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


def iso_twin(ms_field: str, *, optional: bool = False) -> Any:
    """A read-only field showing the epoch-ms field `ms_field` in RFC 3339 (UTC, ``Z``): the
    API's timestamp convention. The epoch-ms field stays for the clients that read it.

    Declare it as ``started_at: ClassVar[str] = iso_twin("started_ms")``: computed on output,
    and ``ClassVar`` keeps pydantic (and its mypy plugin) from taking it for an input field.
    """

    def twin(model: BaseModel) -> str | None:
        ms = getattr(model, ms_field)
        return None if ms is None else iso_time(ms)

    return computed_field(  # type: ignore[call-overload]
        property(twin), return_type=str | None if optional else str,
        description=f"{ms_field} as RFC 3339 in UTC", examples=[EXAMPLE],
        json_schema_extra={"format": "date-time"},
    )


def epoch_ms_field(twin: str, description: str = "", **field: Any) -> Any:
    """An epoch-ms response field, deprecated in OpenAPI in favour of its RFC 3339 `twin`."""
    lead = f"{description}; " if description else ""
    return Field(
        description=f"{lead}epoch milliseconds (deprecated: read {twin})",
        json_schema_extra={"deprecated": True}, **field,
    )
