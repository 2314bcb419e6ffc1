"""Errors raised by `ingest`.

IngestError
 └── InfluxError(status, detail, retryable)   InfluxDB refused or could not take a request;
                                              retryable (connection error, timeout, 5xx) →
                                              spool and replay later; not retryable (4xx:
                                              bad line protocol, field type conflict) →
                                              dead-letter, retrying cannot help
"""

from __future__ import annotations


class IngestError(Exception):
    """Root of the errors raised by `ingest`."""


class InfluxError(IngestError):
    """An InfluxDB request failed; `status` is the HTTP status, or None without a response."""

    def __init__(self, status: int | None, detail: str, *, retryable: bool) -> None:
        self.status, self.detail, self.retryable = status, detail, retryable
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"InfluxDB {where}: {detail}")
