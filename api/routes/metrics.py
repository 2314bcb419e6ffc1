"""Prometheus scrape endpoint (unauthenticated, like /healthz: it holds counts, no data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.metrics import Metrics

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics", summary="Ingest, engine, outbox and HTTP figures in Prometheus text format",
    response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(await registry.render(), media_type=CONTENT_TYPE_LATEST)
