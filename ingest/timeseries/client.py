"""Async client for InfluxDB's v1 HTTP API (`/ping`, `/write`, `/query`).

That API is served by InfluxDB 1.x and by the v1-compatibility endpoints of
2.x and 3.x, so plain httpx calls run against all of them; the v2
`influxdb-client` cannot talk to 1.x at all. Every transport or HTTP failure
becomes an `InfluxError` whose `retryable` tells the caller to spool and
replay (connection error, timeout, 5xx) or to dead-letter (4xx). The statements
it sends are built by `ingest.timeseries.influxql`; the bytes it writes by
`ingest.timeseries.lineprotocol`.
"""

from __future__ import annotations

import gzip
from types import TracebackType
from typing import Any

import httpx

from ingest.errors import InfluxError
from ingest.timeseries import influxql


class InfluxClient:
    """One database on one server; cheap to keep open for the process's lifetime."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, self.database = url.rstrip("/"), database
        auth = (username, password or "") if username else None
        self._http = httpx.AsyncClient(
            base_url=self.url, auth=auth, timeout=timeout_s, transport=transport
        )

    async def ping(self) -> bool:
        try:
            return (await self._http.get("/ping")).status_code == 204
        except httpx.HTTPError:
            return False

    async def write(self, lines: bytes, *, precision: str = "ms", rp: str | None = None) -> None:
        """Store line protocol (gzip on the wire); same series + timestamp overwrites."""
        params = {"db": self.database, "precision": precision}
        if rp is not None:
            params["rp"] = rp
        body = gzip.compress(lines, compresslevel=1)
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        await self._request("POST", "/write", params=params, content=body, headers=headers)

    async def query(self, q: str, *, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run InfluxQL (one or more `;`-separated statements); returns all their series."""
        params = {"db": self.database, "epoch": epoch}
        response = await self._request("POST", "/query", params=params, data={"q": q})
        body = response.json()
        if "error" in body:
            raise InfluxError(response.status_code, body["error"], retryable=False)
        series: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise InfluxError(response.status_code, result["error"], retryable=False)
            series.extend(result.get("series", []))
        return series

    async def ensure_schema(
        self, retention: str = "30d", downsample_retention: str = "365d"
    ) -> None:
        """Create (or align) the database, the `raw` (default) and `downsampled` retention
        policies and the 1-minute downsampling continuous query; safe to run at every start."""
        for duration in (retention, downsample_retention):
            influxql.check_duration(duration)
        db = self.database
        await self.query(influxql.create_database(db))
        existing = {row[0] for s in await self.query(influxql.show_retention_policies(db))
                    for row in s.get("values") or []}
        for rp, duration, default in ((influxql.RAW_RP, retention, True),
                                      (influxql.DOWNSAMPLED_RP, downsample_retention, False)):
            await self.query(influxql.retention_policy(db, rp, duration, exists=rp in existing,
                                                       default=default))
        if influxql.DOWNSAMPLE_CQ not in await self._continuous_queries():
            await self.query(influxql.downsample_continuous_query(db))

    async def drop_database(self) -> None:
        await self.query(influxql.drop_database(self.database))

    async def count(self, measurement: str | None = None) -> int:
        """Points stored in the default retention policy (one measurement, or all).

        A point counts once however many fields it has (the largest per-field count).
        """
        return sum(max(counts, default=0) for counts in await self._field_counts(measurement))

    async def count_values(self, since_ms: int | None = None) -> int:
        """Field values stored in the default retention policy, all measurements (at or after
        ``since_ms`` when given): each reading is one field value, so this is the number of
        readings stored."""
        return sum(sum(counts) for counts in await self._field_counts(None, since_ms))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> InfluxClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _continuous_queries(self) -> set[str]:
        return {row[0] for s in await self.query(influxql.SHOW_CONTINUOUS_QUERIES)
                if s.get("name") == self.database for row in s.get("values") or []}

    async def _field_counts(
        self, measurement: str | None, since_ms: int | None = None
    ) -> list[list[int]]:
        """Per row of ``count(*)``, the per-field counts (time and empty columns left out)."""
        return [[v for v in row[1:] if isinstance(v, int)]
                for s in await self.query(influxql.count(measurement, since_ms))
                for row in s.get("values") or []]

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise InfluxError(None, f"timeout on {path}: {exc!r}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise InfluxError(None, f"{self.url}{path} unreachable: {exc!r}",
                              retryable=True) from exc
        if response.status_code >= 400:
            raise InfluxError(response.status_code, _error_detail(response),
                              retryable=_retryable(response.status_code))
        return response


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def _error_detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text.strip() or response.reason_phrase
