"""Error bodies: RFC 9457 problem details, sent as ``application/problem+json``.

Every error has ``type`` (``about:blank`` when the HTTP status says it all), ``title``,
``status``, ``detail`` and ``instance`` (the request path); some add members of their own
(`api.problems` builds them all).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProblemBase(BaseModel):
    type: str = Field(description="what kind of problem, as a URI; about:blank: see the status")
    title: str = Field(description="a short summary of that kind of problem")
    status: int = Field(description="the HTTP status code")
    instance: str = Field(description="the request path")


class Problem(ProblemBase):
    """An error, as RFC 9457 problem details."""

    detail: str = Field(description="what went wrong this time")


class Invalid(ProblemBase):
    """A 422: one message, or (for a malformed request) FastAPI's list of validation errors,
    each with `loc`, `msg` and `type`."""

    detail: str | list[dict[str, Any]]
